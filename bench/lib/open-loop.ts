/**
 * Open-loop load (issue 17): requests are started on a fixed schedule whatever the server does, and each latency is
 * measured from the time the request was *scheduled*, not sent — so a stall shows up in the tail instead of
 * silently slowing the generator down (autocannon is closed loop: a slow response delays the next request, the
 * "coordinated omission" that hides tail latency). Runs inside the load-generator process.
 */
import { Pool } from 'undici';
import { percentile } from './util.js';

export interface OpenLoopJob {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Requests per second offered. */
  rate: number;
  durationS: number;
  /** Connections the generator may open (enough that it never becomes the bottleneck). */
  maxConnections?: number;
}

export interface OpenLoopResult {
  offered: number;
  completed: number;
  failed: number;
  /** Achieved completions per second. */
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export async function runOpenLoop(job: OpenLoopJob): Promise<OpenLoopResult> {
  const u = new URL(job.url);
  const pool = new Pool(u.origin, { connections: job.maxConnections ?? 512, pipelining: 1 });
  const path = u.pathname + u.search;
  const lat: number[] = [];
  let failed = 0;
  let offered = 0;
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  const end = start + job.durationS * 1000;
  const interval = 1000 / job.rate;
  // One timer tick may be late; every request whose slot has passed is started at once, with its own scheduled time.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (start + offered * interval <= Math.min(now, end)) {
        const scheduled = start + offered * interval;
        offered++;
        const p = pool.request({ path, method: (job.method ?? 'POST') as 'POST', headers: job.headers, body: job.body })
          .then(async (r) => {
            await r.body.dump();
            if (r.statusCode >= 200 && r.statusCode < 300) lat.push(performance.now() - scheduled);
            else failed++;
          }, () => void failed++)
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      if (now >= end) return resolve();
      setTimeout(tick, Math.max(0, Math.min(1, start + offered * interval - performance.now())));
    };
    tick();
  });
  await Promise.all(inflight);
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  lat.sort((a, b) => a - b);
  return { offered, completed: lat.length, failed, rps: lat.length / seconds, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), p999: percentile(lat, 0.999), max: lat.at(-1) ?? NaN };
}
