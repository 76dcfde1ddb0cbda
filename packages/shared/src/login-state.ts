import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** A stored Session for one cluster domain, under `$HOME/.config/octelium/` (mode 0600). */
export interface LoginState { domain: string; accessToken: string; expiresAt: string; user: string; session: string }

function stateDir(): string {
  return join(process.env.HOME || homedir(), '.config', 'octelium');
}
function stateFile(domain: string): string {
  return join(stateDir(), `session-${domain.replace(/[^a-zA-Z0-9.-]/g, '_')}.json`);
}

export function saveLogin(state: LoginState): void {
  mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  const f = stateFile(state.domain);
  writeFileSync(f, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  writeFileSync(join(stateDir(), 'current-domain'), state.domain + '\n', { mode: 0o600 });
}

export function loadLogin(domain: string): LoginState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(domain), 'utf8')) as LoginState;
  } catch {
    return undefined;
  }
}

export function removeLogin(domain: string): boolean {
  try {
    rmSync(stateFile(domain));
    return true;
  } catch {
    return false;
  }
}

/** The domain last logged in to; used when neither --domain nor OCTELIUM_DOMAIN is given. */
export function lastDomain(): string | undefined {
  try {
    return readFileSync(join(stateDir(), 'current-domain'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
