// The whole test suite: typecheck every package, then one `node --test` run (via tsx) over every test file.
// Tests import TypeScript sources (the "octelium-source" export condition); the binaries they spawn run dist/,
// rebuilt here first (well under a second) so they never run code older than the sources under test.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pnpm } from './pnpm.mjs';

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'fixtures') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith('.test.ts') || name.endsWith('.test.tsx')) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
process.env.TURBO_TELEMETRY_DISABLED = '1';
if (!only.length) pnpm(['exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only']);
const files = only.length ? only : readdirSync('packages').flatMap((p) => testFiles(join('packages', p))).sort();
console.log(`running ${files.length} test files`);
process.env.TURBO_TELEMETRY_DISABLED = '1';
const r = spawnSync(process.execPath, ['--conditions=octelium-source', '--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, NODE_OPTIONS: '' },
});
process.exit(r.status ?? 1);
