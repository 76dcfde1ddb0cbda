// Runs pnpm through npx: pnpm is not on PATH on a fresh machine, and corepack's signing keys are stale here.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PNPM_VERSION = '12.21.0';

/** Environment for installs: build better-sqlite3 against local Node headers when they exist, so an
 * unreachable nodejs.org (header download) does not break the source build. Where the prebuilt binary
 * downloads, this setting is never consulted. */
export function installEnv() {
  const env = { ...process.env };
  if (!env.npm_config_nodedir && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  return env;
}

export function pnpm(args, opts = {}) {
  const r = spawnSync('npx', ['-y', `pnpm@${PNPM_VERSION}`, ...args], { stdio: 'inherit', env: installEnv(), ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
