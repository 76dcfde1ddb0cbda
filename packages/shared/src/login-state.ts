import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
  setCurrentDomain(state.domain);
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

/**
 * Every stored login, one per cluster domain: the contexts `octelium context list` shows and `--context` picks from
 * (a context is named by its domain). Sorted by domain.
 */
export function listLogins(): LoginState[] {
  let names: string[];
  try {
    names = readdirSync(stateDir());
  } catch {
    return [];
  }
  const out: LoginState[] = [];
  for (const n of names) {
    if (!n.startsWith('session-') || !n.endsWith('.json')) continue;
    try {
      const s = JSON.parse(readFileSync(join(stateDir(), n), 'utf8')) as LoginState;
      if (typeof s?.domain === 'string' && typeof s.accessToken === 'string') out.push(s);
    } catch {
      // a file being written or damaged: not a context
    }
  }
  return out.sort((a, b) => a.domain.localeCompare(b.domain));
}

/** Makes `domain` the current context: what commands use without --domain, OCTELIUM_DOMAIN or --context. */
export function setCurrentDomain(domain: string): void {
  mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
  writeFileSync(join(stateDir(), 'current-domain'), domain + '\n', { mode: 0o600 });
}
