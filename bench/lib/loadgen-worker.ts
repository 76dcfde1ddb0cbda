/**
 * The load generator, run as its own process (so it never shares an event loop with what it measures):
 * autocannon's programmatic API, closed loop with N connections, one request in flight per connection.
 * autocannon's own histogram keeps whole milliseconds, so latencies are taken from its per-response event
 * (hrtime, µs resolution) instead; only 2xx responses count towards throughput and latency.
 */
import autocannon from 'autocannon';
import { serveIpc, sendReady } from './ipc.js';
import { percentile } from './util.js';
import { runOpenLoop, type OpenLoopJob } from './open-loop.js';

export interface LoadJob {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationS: number;
  warmupS?: number;
  /** Send exactly this many requests, then stop once all are answered (durationS is ignored): nothing is cut off. */
  amount?: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  non2xx: number;
  /** Count per non-2xx status code. */
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  seconds: number;
}

function once(job: LoadJob, durationS: number, onResponse?: (status: number, ms: number) => void): Promise<{ errors: number; timeouts: number }> {
  return new Promise((resolve, reject) => {
    const inst = autocannon({
      url: job.url, method: job.method ?? 'POST', headers: job.headers, body: job.body,
      connections: job.connections, pipelining: 1, duration: durationS, timeout: 10, ...(job.amount ? { amount: job.amount } : {}),
    }, (err: Error | null, r: { errors: number; timeouts: number }) => (err ? reject(err) : resolve(r)));
    if (onResponse) inst.on('response', (_c: unknown, status: number, _bytes: number, ms: number) => onResponse(status, ms));
  });
}

async function run(job: LoadJob): Promise<LoadResult> {
  if (job.warmupS) await once({ ...job, amount: undefined }, job.warmupS);
  const lat: number[] = [];
  let non2xx = 0;
  const statuses: Record<string, number> = {};
  const t0 = performance.now();
  const r = await once(job, job.durationS, (status, ms) => {
    if (status >= 200 && status < 300) lat.push(ms);
    else {
      non2xx++;
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    requests: lat.length,
    rps: lat.length / (job.amount ? seconds : Math.min(seconds, job.durationS)),
    p50: percentile(lat, 0.5),
    p90: percentile(lat, 0.9),
    p99: percentile(lat, 0.99),
    mean: lat.reduce((a, b) => a + b, 0) / (lat.length || 1),
    max: lat.at(-1) ?? NaN,
    non2xx, statuses, errors: r.errors, timeouts: r.timeouts, seconds,
  };
}

serveIpc({ run: (m) => run(m as unknown as LoadJob), openLoop: (m) => runOpenLoop(m as unknown as OpenLoopJob) });
sendReady();
