// Build stage of docker/*.Dockerfile: puts the octelium-ts packages under /app. Plain Node (exec-form RUN), so the
// build stage works on a base image with nothing but node in it.
//   - context with app/node_modules (an install made outside, e.g. by scripts/pack-install.mjs): copied as is;
//   - context with packs/*.tgz only: `npm install` of the tarballs here (the builder then needs npm, and a C++
//     toolchain unless better-sqlite3's prebuilt binary downloads).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';

const CTX = '/ctx';
if (existsSync(`${CTX}/app/node_modules`)) {
  cpSync(`${CTX}/app`, '/app', { recursive: true, verbatimSymlinks: true });
} else {
  const packs = readdirSync(`${CTX}/packs`).filter((f) => f.endsWith('.tgz')).map((f) => `${CTX}/packs/${f}`);
  if (!packs.length) throw new Error('build context has neither app/node_modules nor packs/*.tgz');
  mkdirSync('/app', { recursive: true });
  const r = spawnSync('npm', ['install', '--prefix', '/app', '--omit=dev', '--no-audit', '--no-fund', ...packs], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
mkdirSync('/data', { recursive: true });
