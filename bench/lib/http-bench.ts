/**
 * Request/response benchmark over a set of targets (direct, nginx, haproxy, gateway scenarios) with one load
 * generator process. Points are interleaved (for each repeat: mode → concurrency → every target), so drift on a
 * noisy machine hits every target alike; ratios are computed within each repeat, then the median is reported.
 */
import { join } from 'node:path';
import { startChild, type Child } from './procs.js';
import type { LoadJob, LoadResult } from './loadgen-worker.js';
import type { OpenLoopJob, OpenLoopResult } from './open-loop.js';
import { REPO_ROOT, log, median, treeCpuSeconds } from './util.js';

export type Mode = 'json' | 'sse';

export interface Target {
  id: string;
  label: string;
  /** URL of the MCP endpoint (JSON mode); SSE mode posts to the same URL with `-sse` appended. */
  url: string;
  headers?: Record<string, string>;
  /** Text the tools/call result must carry (checks the request really went through, plugin edits included). */
  expectText: string;
  body?: string;
  /** Processes doing the proxying (trees included), for CPU time per request. */
  pids?: () => number[];
}

export const TOOLS_CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 4, b: 2000 } } });
export const BASE_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

export function urlFor(t: Target, mode: Mode): string {
  return mode === 'sse' ? `${t.url}-sse` : t.url;
}

export interface PointResult {
  target: string;
  /** Median CPU time of the proxy processes per request (µs), and their CPU use in % of one core. */
  cpuUsPerReq?: number;
  cpuPct?: number;
  mode: Mode;
  connections: number;
  runs: LoadResult[];
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Medians over repeats of per-repeat ratios / differences. */
  vsDirect?: { rps: number; p50AddedMs: number; p99AddedMs: number };
  vsNginx?: { rps: number };
}

export class LoadGenerator {
  private constructor(private readonly child: Child) {}

  static async start(opts: { cpus?: string } = {}): Promise<LoadGenerator> {
    const child = startChild('loadgen', join(REPO_ROOT, 'bench/lib/loadgen-worker.ts'), [], { ipc: true, nofile: 65536, cpus: opts.cpus });
    await child.message('ready');
    return new LoadGenerator(child);
  }

  run(job: LoadJob): Promise<LoadResult> {
    return this.child.request<LoadResult>({ type: 'run', ...job }, (job.durationS + (job.warmupS ?? 0)) * 1000 + 60_000);
  }

  /** Fixed offered rate, latency from the scheduled start (open-loop.ts). */
  openLoop(job: OpenLoopJob): Promise<OpenLoopResult> {
    return this.child.request<OpenLoopResult>({ type: 'openLoop', ...job }, job.durationS * 1000 + 60_000);
  }

  stop(): Promise<number | null> {
    return this.child.stop();
  }
}

/** One request through a target; throws unless it answers 200 with the expected tools/call result. */
export async function verifyTarget(t: Target, mode: Mode): Promise<void> {
  const res = await fetch(urlFor(t, mode), { method: 'POST', headers: { ...BASE_HEADERS, ...t.headers }, body: t.body ?? TOOLS_CALL });
  const text = await res.text();
  const ct = res.headers.get('content-type') ?? '';
  const ok = res.status === 200 && text.includes(`"text":"${t.expectText}"`) && (mode === 'sse' ? ct.startsWith('text/event-stream') && text.startsWith('event: message') : ct.includes('json'));
  if (!ok) throw new Error(`${t.label} (${mode}) answered ${res.status} ${ct}: ${text.slice(0, 300)}`);
}

export interface HttpBenchOptions {
  targets: Target[];
  modes: Mode[];
  concurrencies: number[];
  durationS: number;
  warmupS: number;
  repeats: number;
  /** Per mode, concurrencies to run (defaults to all). */
  modeConcurrencies?: Partial<Record<Mode, number[]>>;
}

export async function runHttpBench(lg: LoadGenerator, o: HttpBenchOptions): Promise<PointResult[]> {
  const points = new Map<string, PointResult>();
  const key = (t: string, m: Mode, c: number) => `${t}|${m}|${c}`;
  const perRep: Array<Map<string, LoadResult>> = [];
  for (const mode of o.modes) for (const t of o.targets) await verifyTarget(t, mode);
  const total = o.repeats * o.modes.reduce((n, m) => n + (o.modeConcurrencies?.[m] ?? o.concurrencies).length, 0) * o.targets.length;
  let done = 0;
  for (let rep = 0; rep < o.repeats; rep++) {
    const results = new Map<string, LoadResult>();
    perRep.push(results);
    for (const mode of o.modes) {
      for (const c of o.modeConcurrencies?.[mode] ?? o.concurrencies) {
        for (const t of o.targets) {
          const job = { url: urlFor(t, mode), method: 'POST', headers: { ...BASE_HEADERS, ...t.headers }, body: t.body ?? TOOLS_CALL, connections: c };
          const warm = rep === 0 ? o.warmupS : Math.min(0.5, o.warmupS);
          if (warm > 0) await lg.run({ ...job, durationS: warm });
          const pids = t.pids?.() ?? [];
          const cpu = async () => (await Promise.all(pids.map(treeCpuSeconds))).reduce((a, b) => a + b, 0);
          const cpu0 = await cpu();
          const r: LoadResult & { cpuUsPerReq?: number; cpuPct?: number } = await lg.run({ ...job, durationS: o.durationS });
          if (pids.length) {
            const used = (await cpu()) - cpu0;
            r.cpuUsPerReq = (used * 1e6) / Math.max(1, r.requests);
            r.cpuPct = (100 * used) / r.seconds;
          }
          done++;
          const bad = r.non2xx + r.errors + r.timeouts;
          log(`[${done}/${total}] rep ${rep + 1} ${mode} c=${c} ${t.label.padEnd(28)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${r.cpuUsPerReq ? `  proxy ${r.cpuUsPerReq.toFixed(0)} µs CPU/req (${r.cpuPct!.toFixed(0)}% of a core)` : ''}${bad ? `  (${r.non2xx} non-2xx ${JSON.stringify(r.statuses)}, ${r.errors} errors, ${r.timeouts} timeouts)` : ''}`);
          results.set(key(t.id, mode, c), r);
          const p = points.get(key(t.id, mode, c)) ?? { target: t.id, mode, connections: c, runs: [], rps: 0, p50: 0, p99: 0, errors: 0 };
          p.runs.push(r);
          points.set(key(t.id, mode, c), p);
        }
      }
    }
  }
  for (const p of points.values()) {
    p.rps = median(p.runs.map((r) => r.rps));
    p.p50 = median(p.runs.map((r) => r.p50));
    p.p99 = median(p.runs.map((r) => r.p99));
    const withCpu = (p.runs as Array<LoadResult & { cpuUsPerReq?: number; cpuPct?: number }>).filter((r) => r.cpuUsPerReq !== undefined);
    if (withCpu.length) {
      p.cpuUsPerReq = median(withCpu.map((r) => r.cpuUsPerReq!));
      p.cpuPct = median(withCpu.map((r) => r.cpuPct!));
    }
    p.errors = p.runs.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
    const reps = perRep.map((m) => ({ self: m.get(key(p.target, p.mode, p.connections)), direct: m.get(key('direct', p.mode, p.connections)), nginx: m.get(key('nginx', p.mode, p.connections)) }));
    const withDirect = reps.filter((r) => r.self && r.direct);
    if (withDirect.length && p.target !== 'direct') {
      p.vsDirect = {
        rps: median(withDirect.map((r) => r.self!.rps / r.direct!.rps)),
        p50AddedMs: median(withDirect.map((r) => r.self!.p50 - r.direct!.p50)),
        p99AddedMs: median(withDirect.map((r) => r.self!.p99 - r.direct!.p99)),
      };
    }
    const withNginx = reps.filter((r) => r.self && r.nginx);
    if (withNginx.length && p.target !== 'nginx') p.vsNginx = { rps: median(withNginx.map((r) => r.self!.rps / r.nginx!.rps)) };
  }
  return [...points.values()];
}

/** Median over repeats of `a.rps / b.rps` (both measured in the same repeat). */
export function rpsRatio(points: PointResult[], a: string, b: string, mode: Mode, connections: number): number | undefined {
  const pa = points.find((p) => p.target === a && p.mode === mode && p.connections === connections);
  const pb = points.find((p) => p.target === b && p.mode === mode && p.connections === connections);
  if (!pa || !pb) return undefined;
  const n = Math.min(pa.runs.length, pb.runs.length);
  return median(Array.from({ length: n }, (_, i) => pa.runs[i].rps / pb.runs[i].rps));
}
