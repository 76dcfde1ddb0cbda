/**
 * Start-up budget (issue 19): `octeliumctl --help` to exit and `octelium-cluster start` on an empty data dir to
 * listening (cluster.json written), against `node -e 0` in the same run. The three are interleaved run by run, so a
 * change in machine load hits all of them alike; medians of --runs (default 5). Budgets: --help <= 150 ms,
 * start <= 300 ms (absolute). Both run the compiled dist/ through the bin shims, as installed users do.
 *   node --import tsx bench/startup.ts [--runs 5]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTimed } from './lib/control-plane.js';
import { REPO_ROOT, argValue, mdTable, median, sleep } from './lib/util.js';

const runs = Number(argValue('runs') ?? 5);
const bin = (name: string) => join(REPO_ROOT, 'node_modules/.bin', name);
if (spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/build.mjs')], { stdio: 'inherit' }).status !== 0) process.exit(1);

const times = { node: [] as number[], help: [] as number[], start: [] as number[], tsx: [] as number[] };
// Reference: the same CLI run from its TypeScript sources through tsx, as the bins did before dist/ existed.
const tsxHelp = ['--conditions=octelium-source', '--import', 'tsx', join(REPO_ROOT, 'packages/ctl/src/bin.ts'), '--help'];
for (let i = 0; i < runs; i++) {
  times.node.push(await spawnTimed(process.execPath, ['-e', '0'], { exit: true }));
  times.help.push(await spawnTimed(bin('octeliumctl'), ['--help'], { exit: true }));
  times.tsx.push(await spawnTimed(process.execPath, tsxHelp, { exit: true }));
  const dir = mkdtempSync(join(tmpdir(), 'octelium-startup-'));
  times.start.push(await spawnTimed(bin('octelium-cluster'), ['start', '--data-dir', dir, '--port', '0'], { file: join(dir, 'cluster.json') }));
  await sleep(200); // let the stopped cluster finish closing before the next run
  rmSync(dir, { recursive: true, force: true });
}

const base = median(times.node);
const row = (what: string, xs: number[], budget?: number) => {
  const m = median(xs);
  return [what, m.toFixed(0), budget ? (m - base).toFixed(0) : '—', budget ? `${budget} ${m <= budget ? 'ok' : 'OVER'}` : '—', xs.map((x) => x.toFixed(0)).join(' ')];
};
console.log(`\nNode ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, ${runs} runs each\n`);
console.log(mdTable(['command', 'median ms', 'over node -e 0', 'budget ms', 'runs'], [
  row('node -e 0', times.node),
  row('octeliumctl --help', times.help, 150),
  row('octelium-cluster start (empty data dir → listening)', times.start, 300),
  row('(reference) octeliumctl --help from sources via tsx', times.tsx),
]));
