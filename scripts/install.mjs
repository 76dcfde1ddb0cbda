// `npm run setup|demo|test` all start here: install the workspace with pnpm (from npx), then build every
// package's dist/ (what the binaries run). Quiet unless something fails: pnpm's and node-gyp's output is kept
// and printed only then.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pnpm } from './pnpm.mjs';

if (!existsSync('node_modules/.modules.yaml')) {
  console.log('Installing dependencies with pnpm (the first install compiles better-sqlite3, about a minute)...');
}
const t0 = Date.now();
pnpm(['install', '--reporter=append-only'], { quiet: true });
const b = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (b.status !== 0) process.exit(b.status ?? 1);
if (Date.now() - t0 > 10_000) console.log(`Dependencies installed and packages built in ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
