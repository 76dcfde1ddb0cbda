/**
 * Idle MCP SSE streams held by the cluster: RSS of the cluster process as streams are added (target 10 000 streams
 * at < 400 MB), and first-event latency of a new stream with no load vs with all streams open (vs the upstream
 * directly, under the same load). Client, cluster and upstream are separate processes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { oauth2Token, service } from '@octelium-ts/cluster/testing';
import { BENCH_USER, setupGateway, spawnClusterProc, startTunnelAgent, waitUntilRoutable } from './cluster.js';
import { startChild, type Child } from './procs.js';
import { startNodeProxy, startUpstream } from './stack.js';
import { REPO_ROOT, log, openFds, processMemory, sleep } from './util.js';

interface OpenResult { opened: number; failed: number; errors: Record<string, number>; seconds: number; p50: number; p99: number; held: number }
interface ProbeResult { n: number; failed: number; p50: number; p99: number; max: number }

export interface StreamStep { streams: number; rssMB: number; fds: number }
export interface StreamsResult {
  via: 'direct upstream' | 'connect tunnel' | 'node:http+undici floor';
  /** RSS right after start-up, before any request. */
  startRssMB?: number;
  target: number;
  held: number;
  /** Why fewer than `target` were attempted (fd limit), if so. */
  limitNote?: string;
  baselineRssMB: number;
  steps: StreamStep[];
  rssAtHeldMB: number;
  hwmMB: number;
  /** Slope between the first and last step. */
  kbPerStream: number;
  rssAtTargetMB: number;
  rssAtTargetExtrapolated: boolean;
  openRatePerS: number;
  openErrors: Record<string, number>;
  firstEvent: { idle: ProbeResult; loaded: ProbeResult; directLoaded?: ProbeResult };
  /** Concurrent streams to ONE upstream origin: attempted vs got their first event within 3 s. */
  singleOrigin?: { tried: number; held: number };
  /** Streams dropped while idle (should be 0). */
  closedByPeer: number;
  agentRssMB?: number;
}

const mb = (b: number) => b / 1024 / 1024;

/** Least-squares slope of RSS over streams held, in KB per stream. */
function slopeKB(steps: StreamStep[]): number {
  const n = steps.length;
  if (n < 2) return NaN;
  const mx = steps.reduce((a, s) => a + s.streams, 0) / n;
  const my = steps.reduce((a, s) => a + s.rssMB, 0) / n;
  const sxy = steps.reduce((a, s) => a + (s.streams - mx) * (s.rssMB - my), 0);
  const sxx = steps.reduce((a, s) => a + (s.streams - mx) ** 2, 0);
  return sxx ? (1024 * sxy) / sxx : NaN;
}

async function nofileOf(pid: number): Promise<number> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8').catch(() => '');
  const m = /Max open files\s+(\d+|unlimited)/.exec(limits);
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** `compiled`: the cluster runs from dist/ with plain node (what ships) rather than from its sources under tsx. */
export async function runStreams(o: { target: number; tunnel: boolean; probes: number; origins?: number; compiled?: boolean }): Promise<StreamsResult | { pending: string }> {
  const origins = o.origins ?? 50;
  const upstream = await startUpstream(['--ports', String(origins)]);
  // All streams are one user's: lift the per-user in-flight cap (default 512, a held stream counts) above the target.
  const cluster = await spawnClusterProc({ compiled: o.compiled, nofile: 1 << 20, args: ['--max-inflight-per-user', String(o.target + 1000)] });
  const client = startChild('stream-client', join(REPO_ROOT, 'bench/lib/stream-client.ts'), [], { ipc: true, nofile: 1 << 20 });
  let agent: Child | undefined;
  try {
    await client.message('ready');
    const startRss = (await processMemory(cluster.child.pid))!.rss;
    await setupGateway(cluster, upstream.url, []);
    // undici's Agent in the gateway keeps at most `connections` sockets per origin, and an SSE stream holds one for
    // its lifetime; spreading the upstream over several origins (a loadbalance Service) measures the cluster's
    // per-stream memory rather than that cap. The cap itself is measured on `streams-single`.
    const endpoints = upstream.ports.map((p) => ({ url: `http://127.0.0.1:${p}` }));
    await cluster.api.apply({
      resources: [
        service('streams', { config: { upstream: { loadbalance: { endpoints } } } }),
        service('streams-single', { config: { upstream: { url: upstream.url } } }),
        service('streams-tunnel', { config: { upstream: { url: upstream.url, user: 'bench-agent' } } }),
      ],
    });
    const token = await oauth2Token(cluster.api, cluster.url, BENCH_USER);
    let svc = 'streams';
    if (o.tunnel) {
      const r = await startTunnelAgent(cluster, 'streams-tunnel');
      if (!r.child) return { pending: `PENDING — tunnel not available in this build: ${r.pending}` };
      agent = r.child;
      svc = 'streams-tunnel';
    }
    const headers = { authorization: `Bearer ${token}` };
    const target = (name: string) => ({ port: cluster.port, path: `/svc/${name}/mcp`, headers });
    const direct = { port: upstream.ports[0], path: '/mcp', headers: {} };
    await waitUntilRoutable(`${cluster.url}/svc/${svc}/mcp`, token);

    await client.request<ProbeResult>({ type: 'probe', target: target(svc), n: 50 }); // warm-up
    const idle = await client.request<ProbeResult>({ type: 'probe', target: target(svc), n: o.probes });

    let singleOrigin: StreamsResult['singleOrigin'];
    if (!o.tunnel) {
      const tried = 300;
      const r = await client.request<OpenResult>({ type: 'open', target: target('streams-single'), count: tried, parallel: tried, timeoutMs: 3000 });
      singleOrigin = { tried, held: r.opened };
      await client.request({ type: 'closeAll' });
      await sleep(500);
    }

    await sleep(500);
    const base = (await processMemory(cluster.child.pid))!;
    const baseFds = await openFds(cluster.child.pid);
    const fdLimit = await nofileOf(cluster.child.pid);
    const fdsPerStream = o.tunnel ? 1 : 2;
    const fit = Math.floor((fdLimit - baseFds - 64) / fdsPerStream);
    const goal = Math.min(o.target, fit);
    const limitNote = goal < o.target ? `the cluster may open ${fdLimit} files (hard RLIMIT_NOFILE here) and needs ${fdsPerStream} per stream (client + upstream socket): at most ${fit} streams fit` : undefined;
    if (limitNote) log(`streams: ${limitNote}`);

    const steps: StreamStep[] = [{ streams: 0, rssMB: mb(base.rss), fds: baseFds }];
    const plan = [...new Set([0.1, 0.25, 0.5, 0.75, 1].map((f) => Math.round(goal * f)))].filter((n) => n > 0);
    let held = 0;
    let openSeconds = 0;
    const openErrors: Record<string, number> = {};
    for (const n of plan) {
      const r = await client.request<OpenResult>({ type: 'open', target: target(svc), count: n - held, parallel: 200 }, 600_000);
      held = r.held;
      openSeconds += r.seconds;
      for (const [k, v] of Object.entries(r.errors)) openErrors[k] = (openErrors[k] ?? 0) + v;
      await sleep(1000);
      const m = (await processMemory(cluster.child.pid))!;
      steps.push({ streams: held, rssMB: mb(m.rss), fds: await openFds(cluster.child.pid) });
      log(`streams (${o.tunnel ? 'tunnel' : 'direct'}): ${held} held, cluster RSS ${mb(m.rss).toFixed(0)} MB, ${steps.at(-1)!.fds} fds${r.failed ? `, ${r.failed} failed: ${JSON.stringify(r.errors)}` : ''}`);
      if (r.failed) break;
    }
    const loaded = await client.request<ProbeResult>({ type: 'probe', target: target(svc), n: o.probes });
    const directLoaded = o.tunnel ? undefined : await client.request<ProbeResult>({ type: 'probe', target: direct, n: o.probes });
    const { closedByPeer } = await client.request<{ closedByPeer: number }>({ type: 'stats' });
    const last = steps.at(-1)!;
    const kbPerStream = slopeKB(steps);
    const hwm = (await processMemory(cluster.child.pid))!.hwm;
    const agentRssMB = agent ? mb((await processMemory(agent.pid))?.rss ?? NaN) : undefined;
    await client.request({ type: 'closeAll' });
    return {
      via: o.tunnel ? 'connect tunnel' : 'direct upstream', startRssMB: mb(startRss),
      target: o.target, held, limitNote, baselineRssMB: mb(base.rss), steps, rssAtHeldMB: last.rssMB, hwmMB: mb(hwm), kbPerStream,
      rssAtTargetMB: held >= o.target ? last.rssMB : last.rssMB + (kbPerStream * (o.target - held)) / 1024,
      rssAtTargetExtrapolated: held < o.target,
      openRatePerS: held / openSeconds, openErrors,
      firstEvent: { idle, loaded, directLoaded }, singleOrigin, closedByPeer, agentRssMB,
    };
  } finally {
    await client.stop();
    await agent?.stop();
    await cluster.stop();
    await upstream.child.stop();
  }
}

/**
 * The same idle streams through the bare node:http + undici proxy (no pipeline, no per-origin cap): what any Node
 * proxy pays per stream, to read the gateway's KB per stream against.
 */
export async function runFloorStreams(o: { target: number; probes: number }): Promise<StreamsResult> {
  const upstream = await startUpstream();
  const proxy = await startNodeProxy(upstream.ports[0], 1, true);
  const client = startChild('stream-client', join(REPO_ROOT, 'bench/lib/stream-client.ts'), [], { ipc: true, nofile: 1 << 20 });
  try {
    await client.message('ready');
    const target = { port: proxy.port, path: '/mcp', headers: {} };
    const startRss = (await processMemory(proxy.child.pid))!.rss;
    await client.request({ type: 'probe', target, n: 50 });
    const idle = await client.request<ProbeResult>({ type: 'probe', target, n: o.probes });
    await sleep(500);
    const base = (await processMemory(proxy.child.pid))!;
    const baseFds = await openFds(proxy.child.pid);
    const fit = Math.floor(((await nofileOf(proxy.child.pid)) - baseFds - 64) / 2);
    const goal = Math.min(o.target, fit);
    const steps: StreamStep[] = [{ streams: 0, rssMB: mb(base.rss), fds: baseFds }];
    let held = 0;
    let seconds = 0;
    for (const n of [Math.round(goal * 0.1), goal]) {
      const r = await client.request<OpenResult>({ type: 'open', target, count: n - held, parallel: 200 }, 600_000);
      held = r.held;
      seconds += r.seconds;
      await sleep(1000);
      steps.push({ streams: held, rssMB: mb((await processMemory(proxy.child.pid))!.rss), fds: await openFds(proxy.child.pid) });
    }
    const loaded = await client.request<ProbeResult>({ type: 'probe', target, n: o.probes });
    const last = steps.at(-1)!;
    const kbPerStream = slopeKB(steps);
    log(`streams (node floor): ${held} held, RSS ${last.rssMB.toFixed(0)} MB, ${kbPerStream.toFixed(1)} KB/stream`);
    return {
      via: 'node:http+undici floor', startRssMB: mb(startRss), target: o.target, held, baselineRssMB: mb(base.rss), steps, rssAtHeldMB: last.rssMB,
      hwmMB: mb((await processMemory(proxy.child.pid))!.hwm), kbPerStream,
      rssAtTargetMB: held >= o.target ? last.rssMB : last.rssMB + (kbPerStream * (o.target - held)) / 1024, rssAtTargetExtrapolated: held < o.target,
      openRatePerS: held / seconds, openErrors: {}, firstEvent: { idle, loaded }, closedByPeer: 0,
      limitNote: goal < o.target ? `the same fd limit: at most ${fit} streams fit` : undefined,
    };
  } finally {
    await client.request({ type: 'closeAll' }).catch(() => undefined);
    await client.stop();
    await proxy.child.stop();
    await upstream.child.stop();
  }
}
