// Builds every workspace package's dist/: what the bins and the published tarballs run with plain `node`.
//
//   node scripts/build.mjs                 JavaScript + source maps (esbuild, well under a second; run by every
//                                          install and test run, so dist/ never lags behind src/)
//   node scripts/build.mjs --declarations  the above, then .d.ts files (`tsc -b` over tsconfig.build.json, about
//                                          half a minute; run before packing)
//
// Why esbuild for the JavaScript and tsc only for declarations: esbuild transpiles one file at a time in
// milliseconds, so building on every install/test costs nothing and a type error someone is still fixing never
// stops the binaries from starting; tsc is the only tool that emits faithful .d.ts, and it takes as long as a
// full type check (the test run already does that), so it runs only where declarations are needed: packing.
// Files are transpiled, not bundled: dist/ mirrors src/ module for module, so `new URL('./x.mjs', import.meta.url)`
// (worker threads) and `../../../proto/` paths resolve the same from dist/ as from src/, and dependencies stay
// ordinary npm dependencies.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = join(ROOT, 'packages');

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

const isTest = (f) => /\.test\.tsx?$/.test(f);
const isTs = (f) => /\.tsx?$/.test(f) && !f.endsWith('.d.ts');
// A .mjs that registers tsx only exists so that sources can start a worker thread; dist/ has the compiled .js it loads.
const isDevShim = (f) => f.endsWith('.mjs') && /from ['"]tsx\//.test(readFileSync(f, 'utf8'));

async function buildPackage(pkgDir) {
  const src = join(pkgDir, 'src');
  const dist = join(pkgDir, 'dist');
  const files = walk(src).filter((f) => !isTest(f));
  // Clean JavaScript output each time: a source file that was deleted or renamed must not live on in dist/.
  for (const f of existsSync(dist) ? walk(dist) : []) if (/\.(m?js|js\.map)$/.test(f)) rmSync(f);
  await build({
    entryPoints: files.filter(isTs),
    outdir: dist,
    outbase: src,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    jsx: 'automatic',
    logLevel: 'warning',
    tsconfig: join(pkgDir, 'tsconfig.json'),
  });
  for (const f of files.filter((f) => f.endsWith('.mjs') && !isDevShim(f))) {
    const out = join(dist, relative(src, f));
    mkdirSync(dirname(out), { recursive: true });
    copyFileSync(f, out);
  }
}

const t0 = performance.now();
const pkgs = readdirSync(PACKAGES).map((p) => join(PACKAGES, p)).filter((p) => existsSync(join(p, 'src')));
await Promise.all(pkgs.map(buildPackage));
if (process.argv.includes('--verbose')) console.log(`built ${pkgs.length} packages (JavaScript) in ${(performance.now() - t0).toFixed(0)} ms`);

if (process.argv.includes('--declarations')) {
  const configs = pkgs.map((p) => join(p, 'tsconfig.build.json')).filter(existsSync);
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-b', ...configs], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
