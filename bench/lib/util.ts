/** Small helpers shared by the bench scripts: statistics, formatting, ports, timing. */
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const RESULTS_DIR = resolve(REPO_ROOT, 'bench/results');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))];
}

/** A free TCP port on 127.0.0.1 (for peers that cannot listen on port 0 and report it, like nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, stepMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && (v as unknown) !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

export const fmt = {
  n: (x: number | undefined, digits = 0) => (x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })),
  ms: (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1)),
  ratio: (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(2)),
  mb: (bytes: number | undefined) => (bytes === undefined || !Number.isFinite(bytes) ? '—' : (bytes / 1024 / 1024).toFixed(0)),
};

/** A Markdown table; numbers should already be formatted. */
export function mdTable(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Resident set size and its high-water mark of a process, in bytes (Linux /proc). */
export async function processMemory(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(/\s(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(k + ':')) ?? '')?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Open file descriptors of a process (Linux /proc). */
export async function openFds(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  try {
    return (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    return NaN;
  }
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** `--name value` / `--name=value` / `--flag` from argv. */
export function argValue(name: string, argv = process.argv.slice(2)): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1] && !argv[i + 1].startsWith('--') ? argv[i + 1] : 'true';
    if (argv[i].startsWith(`--${name}=`)) return argv[i].slice(name.length + 3);
  }
  return undefined;
}
export const hasFlag = (name: string, argv = process.argv.slice(2)) => argValue(name, argv) !== undefined;
export const numList = (s: string) => s.split(',').map(Number).filter((n) => n > 0);

/** CPU seconds (user + system) used so far by a process and all its descendants (Linux /proc). */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const { readFile, readdir } = await import('node:fs/promises');
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  const seen = new Set<number>();
  const visit = async (p: number): Promise<void> => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const stat = await readFile(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) / ticks; // utime, stime (fields 14, 15)
      for (const tid of await readdir(`/proc/${p}/task`)) {
        const kids = (await readFile(`/proc/${p}/task/${tid}/children`, 'utf8').catch(() => '')).trim();
        for (const k of kids ? kids.split(/\s+/) : []) await visit(Number(k));
      }
    } catch {
      /* gone */
    }
  };
  await visit(pid);
  return total;
}
