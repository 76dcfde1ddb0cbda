import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/** What each `octelium connect` writes to `$HOME/.config/octelium/connect-<domain>.<pid>.json` for `octelium status`. */
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

function filePrefix(domain: string): string {
  return `connect-${domain.replace(/[^a-zA-Z0-9.-]/g, '_')}.`;
}

/**
 * One file per agent process, so several `octelium connect` for one cluster (one serving, one publishing …) do
 * not overwrite each other's state; `octelium status` lists them all.
 */
export function connectStatePath(domain: string, pid = process.pid): string {
  return join(configDir(), `${filePrefix(domain)}${pid}.json`);
}

/** Where a detached agent (`-d`) writes its output: beside its state file. */
export function connectLogPath(domain: string, pid: number): string {
  return connectStatePath(domain, pid).replace(/\.json$/, '.log');
}

/** Written atomically (temp file + rename) so a reader never sees half a file. */
export function writeConnectState(state: ConnectState, file = connectStatePath(state.domain, state.pid)): void {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

/** Removes the state file if it is this process's. */
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
 * The state of the `octelium connect` agent with this pid for `domain`, or undefined when it is not running (no
 * file, or the file of an agent that died without cleaning up).
 */
export function readConnectState(domain: string, pid = process.pid): ConnectState | undefined {
  return readStateFile(connectStatePath(domain, pid));
}

/**
 * Every `octelium connect` agent running for `domain`, oldest first. Files left by agents that died (killed with
 * SIGKILL, a crash) are removed on the way, so they neither pile up nor show as running.
 */
export function readConnectStates(domain: string): ConnectState[] {
  const prefix = filePrefix(domain);
  let names: string[];
  try {
    names = readdirSync(configDir());
  } catch {
    return [];
  }
  const out: ConnectState[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^\d+\.json$/.test(name.slice(prefix.length))) continue;
    const file = join(configDir(), name);
    const state = readStateFile(file);
    if (state && state.domain === domain) out.push(state);
    else if (!state) removeIfDead(file);
  }
  return out.sort((a, b) => a.since.localeCompare(b.since) || a.pid - b.pid);
}

function readStateFile(file: string): ConnectState | undefined {
  let state: ConnectState;
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as ConnectState;
  } catch {
    return undefined;
  }
  if (typeof state?.pid !== 'number' || !processAlive(state.pid)) return undefined;
  return state;
}

/** Deletes a state file whose agent is gone (its pid no longer runs); one being written right now is left alone. */
function removeIfDead(file: string): void {
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as ConnectState;
    if (typeof state?.pid === 'number' && !processAlive(state.pid)) rmSync(file, { force: true });
  } catch {
    // unreadable or already gone: leave it
  }
}
