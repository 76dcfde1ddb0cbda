import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/** What `octelium connect` writes to `$HOME/.config/octelium/connect-<domain>.json` for `octelium status`. */
export interface ConnectState {
  pid: number;
  domain: string;
  state: ConnectionState;
  /** When `state` was entered (ISO time). */
  since: string;
  /** The User the cluster authenticated the agent as (once connected). */
  user?: string;
  serving: string[];
  /** Services the cluster refused to let this agent serve, with its reason. */
  rejected?: Array<{ name: string; reason: string }>;
  publishing: Array<{ service: string; address: string }>;
  lastError?: string;
  /** When the next reconnect attempt is due (while disconnected). */
  retryAt?: string;
}

function configDir(): string {
  return join(process.env.HOME || homedir(), '.config', 'octelium');
}

export function connectStatePath(domain: string): string {
  return join(configDir(), `connect-${domain.replace(/[^a-zA-Z0-9.-]/g, '_')}.json`);
}

/** Written atomically (temp file + rename) so a reader never sees half a file. */
export function writeConnectState(state: ConnectState, file = connectStatePath(state.domain)): void {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/** Removes the state file if it is this process's (a newer agent may have taken over the domain). */
export function removeConnectState(domain: string, file = connectStatePath(domain), pid = process.pid): void {
  try {
    const cur = JSON.parse(readFileSync(file, 'utf8')) as ConnectState;
    if (cur.pid !== pid) return;
    rmSync(file, { force: true });
  } catch {
    // nothing to remove
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The state of the `octelium connect` agent for `domain`, or undefined when none is running (no file, or the file
 * of an agent that died without cleaning up).
 */
export function readConnectState(domain: string, file = connectStatePath(domain)): ConnectState | undefined {
  let state: ConnectState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as ConnectState;
  } catch {
    return undefined;
  }
  if (typeof state?.pid !== 'number' || !processAlive(state.pid)) return undefined;
  return state;
}
