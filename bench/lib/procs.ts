/**
 * Child processes of a bench run. Every process under test (cluster, upstream, load generator, nginx, haproxy,
 * tunnel agent) is a separate OS process so none shares an event loop with another; all are spawned through
 * `bash -c 'ulimit -n …; exec …'` so the open-files limit can be raised (up to the hard limit) per child.
 * Children are tracked here and stopped by their own pid at the end (or when the run is interrupted).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { REPO_ROOT, log } from './util.js';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  output(): string;
  /** Sends an IPC request (children started with `ipc: true`) and resolves with the child's answer. */
  request<T = unknown>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Resolves with the next IPC message of this type (e.g. a child's `ready`). */
  message<T = unknown>(type: string, timeoutMs?: number): Promise<T>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

const children = new Set<Child>();
let nextId = 1;

/** The soft and hard RLIMIT_NOFILE a child gets (read once through bash). */
export function nofileLimits(): { soft: number; hard: number } {
  const r = spawnSync('bash', ['-c', 'echo "$(ulimit -Sn) $(ulimit -Hn)"'], { encoding: 'utf8' });
  const [soft, hard] = r.stdout.trim().split(/\s+/).map((x) => (x === 'unlimited' ? Infinity : Number(x)));
  return { soft, hard };
}

export interface StartOptions {
  /** Extra node flags (e.g. --cpu-prof). Ignored when `bin` is set. */
  nodeArgs?: string[];
  /** A non-node executable (nginx, haproxy) instead of `node --import tsx <entry>`. */
  bin?: string;
  env?: Record<string, string | undefined>;
  /** Open-files limit to ask for (capped at the hard limit). */
  nofile?: number;
  ipc?: boolean;
  /** Echo the child's output to our stderr. */
  echo?: boolean;
  /** Pin to CPUs with taskset (e.g. "1"). */
  cpus?: string;
}

/** Starts `node --import tsx <entry> ...args` (or `bin ...args`) as a tracked child. */
export function startChild(name: string, entry: string, args: string[], opts: StartOptions = {}): Child {
  const cmd = opts.bin ? [opts.bin, ...args] : [process.execPath, ...(opts.nodeArgs ?? []), '--import', 'tsx', entry, ...args];
  if (opts.cpus) cmd.unshift('taskset', '-c', opts.cpus);
  const script = `ulimit -n ${opts.nofile ?? 65536} 2>/dev/null || ulimit -n hard 2>/dev/null; exec "$@"`;
  const proc = spawn('bash', ['-c', script, 'bash', ...cmd], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(opts.ipc ? (['ipc'] as const) : [])],
  });
  let out = '';
  const onData = (d: Buffer) => {
    out += d;
    if (out.length > 200_000) out = out.slice(-100_000);
    if (opts.echo) process.stderr.write(`[${name}] ${d}`);
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code, sig) => r(code ?? (sig ? 128 : null))));
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  const waiters: Array<{ type: string; resolve(v: unknown): void }> = [];
  proc.on('message', (m: { id?: number; type?: string; ok?: boolean; result?: unknown; error?: string }) => {
    if (m.id !== undefined && pending.has(m.id)) {
      const p = pending.get(m.id)!;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
      return;
    }
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
  });
  void exited.then((code) => {
    for (const p of pending.values()) p.reject(new Error(`${name} exited (${code}) during a request:\n${out.slice(-2000)}`));
    pending.clear();
  });
  const child: Child = {
    name, proc, pid: proc.pid!, output: () => out, exited,
    request<T>(msg: Record<string, unknown>, timeoutMs = 600_000): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const t = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: no answer to ${String(msg.type)} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(t);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(t);
            reject(e);
          },
        });
        proc.send({ ...msg, id });
      });
    },
    message<T>(type: string, timeoutMs = 60_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: no "${type}" message within ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
        const w = { type, resolve: (v: unknown) => (clearTimeout(t), resolve(v as T)) };
        waiters.push(w);
        void exited.then((code) => {
          clearTimeout(t);
          reject(new Error(`${name} exited (${code}) before "${type}":\n${out.slice(-2000)}`));
        });
      });
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      children.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  children.add(child);
  return child;
}

/** Waits for a line matching `re` in the child's output. */
export async function waitForOutput(child: Child, re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = child.output().match(re);
    if (m) return m;
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited (${child.proc.exitCode}):\n${child.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${child.name}: no ${re} within ${timeoutMs} ms:\n${child.output().slice(-3000)}`);
    await Promise.race([once(child.proc.stdout!, 'data'), once(child.proc.stderr!, 'data'), new Promise((r) => setTimeout(r, 50))]);
  }
}

/** Stops every child still running (each by its own pid). */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop('SIGTERM', 5_000).catch(() => undefined)));
}

let hooked = false;
/** Stops children when the run ends or is interrupted. */
export function installCleanup(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      log(`${sig}: stopping child processes`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}
