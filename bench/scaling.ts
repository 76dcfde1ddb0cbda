/**
 * Scale-out bench (issue 15, docs/scaling.md). Same upstream, same load generator, targets interleaved per repeat:
 *   - the gateway hot path (scenario (a): JWT auth, no policy) on one process with SQLite, on `--workers 2` with
 *     SQLite, and on one replica with PostgreSQL (the hot path must not touch the store, so these should match
 *     except for what a second core buys);
 *   - a tunnelled Service (scenario (d)) through the replica holding the agent, and through another replica that
 *     forwards to it; CPU per request summed over both replicas and the agent (goal: forwarded ≤ 1.3× local).
 *
 *   node --conditions=octelium-source --import tsx bench/scaling.ts [--duration 3] [--repeats 3] [--conc 50]
 *
 * Needs PostgreSQL 15 (/usr/lib/postgresql/15/bin); without it the PostgreSQL targets are left out.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '@octelium-ts/shared';
import { startTestPostgres } from '../packages/cluster/test/helpers/postgres.js';
import { CLUSTER_ENTRY, setupGateway, startTunnelAgent, type ClusterProc } from './lib/cluster.js';
import { LoadGenerator, runHttpBench, type PointResult, type Target } from './lib/http-bench.js';
import { installCleanup, startChild, stopAll } from './lib/procs.js';
import { checksTable, httpTable, type Check } from './lib/report.js';
import { startUpstream } from './lib/stack.js';
import { argValue, fmt, log, numList, waitFor } from './lib/util.js';

/** `octelium-cluster start` with extra flags; `loginFrom` is the data dir holding the bootstrap token (replicas). */
async function spawn(name: string, args: string[], loginFrom?: string): Promise<ClusterProc> {
  const dataDir = mkdtempSync(join(tmpdir(), `octelium-bench-${name}-`));
  const child = startChild(name, CLUSTER_ENTRY, ['start', '--data-dir', dataDir, '--port', '0', '--container-runtime', 'none', ...args], { nofile: 65536 });
  const info = join(dataDir, 'cluster.json');
  await waitFor(`${name} cluster.json`, () => {
    if (child.proc.exitCode !== null) throw new Error(`${name} exited:\n${child.output()}`);
    return existsSync(info) ? true : undefined;
  }, 60_000, 20);
  const { port } = JSON.parse(readFileSync(info, 'utf8')) as { port: number };
  // Reach this process at its own address (a replica's domain names the whole cluster).
  const domain = `127.0.0.1:${port}`;
  const api = new ApiClient({ domain });
  api.accessToken = (await api.login(readFileSync(join(loginFrom ?? dataDir, 'bootstrap-token'), 'utf8').trim())).accessToken;
  return { child, url: `http://${domain}`, port, domain, dataDir, api, stop: async () => {
    await child.stop('SIGTERM', 15_000);
    rmSync(dataDir, { recursive: true, force: true });
  } };
}

async function main(): Promise<void> {
  installCleanup();
  const durationS = Number(argValue('duration') ?? 3);
  const repeats = Number(argValue('repeats') ?? 3);
  const concurrencies = numList(argValue('conc') ?? '50');
  const upstream = await startUpstream();
  const targets: Target[] = [{ id: 'direct', label: 'direct', url: `${upstream.url}/mcp`, expectText: '2004' }];
  const stops: Array<() => Promise<void>> = [];
  const gateway = async (id: string, label: string, c: ClusterProc) => {
    const gw = await setupGateway(c, upstream.url, ['a']);
    targets.push({ id, label, url: `${c.url}/svc/${gw.services.a}/mcp`, headers: { authorization: `Bearer ${gw.token}` }, expectText: '2004', pids: () => [c.child.pid] });
  };

  const one = await spawn('sqlite-1', ['--domain', '127.0.0.1']);
  stops.push(one.stop);
  await gateway('sqlite-1', 'SQLite, 1 process', one);
  const two = await spawn('sqlite-2w', ['--domain', '127.0.0.1', '--workers', '2']);
  stops.push(two.stop);
  await gateway('sqlite-2w', 'SQLite, --workers 2', two);

  const pg = await startTestPostgres('bench/scaling.ts PostgreSQL targets');
  if (pg) {
    const url = await pg.createDatabase('bench_scaling');
    const domain = ['--store', url, '--domain', '127.0.0.1:18999'];
    const a = await spawn('pg-a', domain);
    const b = await spawn('pg-b', domain, a.dataDir);
    stops.push(b.stop, a.stop);
    await gateway('pg-1', 'PostgreSQL, 1 replica', a);
    const gw = await setupGateway(a, upstream.url, ['d']);
    const agent = await startTunnelAgent(a, gw.services.d);
    if (!agent.child) throw new Error(`tunnel agent: ${agent.pending}`);
    stops.push(async () => void (await agent.child!.stop()));
    // The agent's replica records it within a heartbeat; until then B would wait for it.
    await new Promise((r) => setTimeout(r, 1500));
    const pids = () => [a.child.pid, b.child.pid, agent.child!.pid];
    const auth = { authorization: `Bearer ${gw.token}` };
    targets.push({ id: 'tunnel-local', label: 'tunnel, agent on this replica', url: `${a.url}/svc/${gw.services.d}/mcp`, headers: auth, expectText: '2004', pids });
    targets.push({ id: 'tunnel-fwd', label: 'tunnel, forwarded to its replica', url: `${b.url}/svc/${gw.services.d}/mcp`, headers: auth, expectText: '2004', pids });
    stops.push(async () => pg.close());
  } else {
    log('PostgreSQL not available: only the SQLite targets');
  }

  const lg = await LoadGenerator.start();
  log(`scaling bench: ${targets.map((t) => t.label).join(', ')}; c=${concurrencies.join(',')}; ${durationS} s per point, ${repeats} repeat(s)`);
  const points = await runHttpBench(lg, { targets, modes: ['json'], concurrencies, durationS, warmupS: 2, repeats });
  await lg.stop();
  for (const s of stops) await s().catch(() => {});
  await upstream.child.stop();
  await stopAll();

  console.log('\n## Gateway hot path and tunnel forwarding (POST tools/call, JSON)\n');
  console.log(httpTable(points, targets, 'json'));
  console.log('\n## Ratios (median over repeats, same repeat)\n');
  console.log(checksTable(checks(points, concurrencies[concurrencies.length - 1])));
}

function checks(points: PointResult[], c: number): Check[] {
  const at = (id: string) => points.find((p) => p.target === id && p.connections === c);
  const ratio = (a: string, b: string, f: (p: PointResult) => number | undefined) => {
    const pa = at(a), pb = at(b);
    if (!pa || !pb) return undefined;
    const n = Math.min(pa.runs.length, pb.runs.length);
    const xs = Array.from({ length: n }, (_, i) => {
      const ra = pa.runs[i] as PointResult['runs'][number] & { cpuUsPerReq?: number }, rb = pb.runs[i] as typeof ra;
      return f({ ...pa, rps: ra.rps, cpuUsPerReq: ra.cpuUsPerReq })! / f({ ...pb, rps: rb.rps, cpuUsPerReq: rb.cpuUsPerReq })!;
    }).filter(Number.isFinite).sort((x, y) => x - y);
    return xs.length ? xs[Math.floor(xs.length / 2)] : undefined;
  };
  const workers = ratio('sqlite-2w', 'sqlite-1', (p) => p.rps);
  const store = ratio('pg-1', 'sqlite-1', (p) => p.rps);
  const fwdCpu = ratio('tunnel-fwd', 'tunnel-local', (p) => p.cpuUsPerReq);
  const fwdRps = ratio('tunnel-fwd', 'tunnel-local', (p) => p.rps);
  return [
    { name: '--workers 2 vs 1 (SQLite)', target: 'req/s ratio (2 cores here)', measured: fmt.ratio(workers), met: undefined, note: `${fmt.ratio(workers)}` },
    { name: 'PostgreSQL vs SQLite store, 1 process', target: '≈ 1.0 (hot path never reads the store)', measured: fmt.ratio(store), met: store === undefined ? undefined : store >= 0.85 },
    { name: 'forwarded vs local tunnel', target: '≤ 1.3× CPU per request', measured: `${fmt.ratio(fwdCpu)} CPU, ${fmt.ratio(fwdRps)} req/s`, met: fwdCpu === undefined ? undefined : fwdCpu <= 1.3 },
  ];
}

await main();
