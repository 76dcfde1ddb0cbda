// Runs pnpm through npx: pnpm is not on PATH on a fresh machine, and corepack's signing keys are stale here.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PNPM_VERSION = '12.21.0';

/** Environment for installs: build better-sqlite3 against local Node headers when they exist, so an
 * unreachable nodejs.org (header download) does not break the source build. Where the prebuilt binary
 * downloads, this setting is never consulted. No update banner: the pnpm version is pinned on purpose. */
export function installEnv() {
  const env = { ...process.env, npm_config_update_notifier: 'false' };
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  return env;
}

/** Runs pnpm; exits with its status when it fails. `quiet`: its output is shown only if it fails. */
export function pnpm(args, opts = {}) {
  const { quiet, ...spawnOpts } = opts;
  const r = spawnSync('npx', ['-y', `pnpm@${PNPM_VERSION}`, ...args], {
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', env: installEnv(), maxBuffer: 64 * 1024 * 1024, ...spawnOpts,
  });
  if (r.status !== 0) {
    if (quiet) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    console.error(`pnpm ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}
