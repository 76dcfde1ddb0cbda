/**
 * The long fuzzing run (issue 18 §5): the same properties as packages/cluster/test/fuzz.test.ts, which CI runs
 * bounded, scaled up. Not a benchmark in the ratio sense — it lives here because it is too slow for the suite.
 *
 *   node --import tsx bench/fuzz.ts [--scale 50]     (default 50×: ~10 000 targets per property, a few minutes)
 */
import { spawnSync } from 'node:child_process';
import { argValue, REPO_ROOT } from './lib/util.js';

const scale = argValue('scale') ?? '50';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', 'packages/cluster/test/fuzz.test.ts'], {
  cwd: REPO_ROOT, stdio: 'inherit', env: { ...process.env, FUZZ_RUNS: scale, NODE_OPTIONS: '' },
});
process.exit(r.status ?? 1);
