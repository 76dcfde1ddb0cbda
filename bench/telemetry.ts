/**
 * Cost of OTLP export on gateway throughput (issue 8: target <= 10 %). Two clusters run side by side —
 * one without telemetry export, one exporting every AccessLog and span to an OTLP/HTTP receiver — behind
 * the same upstream, loaded by the same autocannon, alternating off/on for `--repeats` rounds; the
 * median requests/s of each are compared.
 *
 * Processes: each cluster, the upstream and the OTLP receiver run in their own process (same file,
 * `--role`), autocannon in this one. Besides req/s it prints the clusters' CPU time per request: all threads, the
 * main (request) thread alone, and the busiest other thread (with export on, usually the OTLP worker). On a machine with a
 * spare core the main-thread figure is what bounds throughput; on a busy 2-core one, every thread's is. The request is a `tools/call` JSON-RPC POST with a bearer token to a
 * Service that buffers JSON bodies, so the exported log carries a bodyMap like a real MCP audit log.
 *
 *   node --import tsx bench/telemetry.ts [--duration 8] [--connections 50] [--repeats 3] [--pin]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { startOtlpReceiver } from '../packages/cluster/src/telemetry/otlp-receiver.js';
import { adminClient, oauth2Token, service, spawnCluster, tempDir, user, type ClusterProcess } from '../packages/cluster/test/helpers/testing.js';

const SELF = fileURLToPath(import.meta.url);
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const log = (m: string) => process.stderr.write(`[bench telemetry] ${m}\n`);
const ANSWER = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: '11' }] } });
const BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 4, b: 7 } } });

/** Child roles: print one `READY <url>` line, then serve until killed. */
async function role(name: string): Promise<void> {
  if (name === 'upstream') {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) }).end(ANSWER));
    });
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    console.log(`READY http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } else if (name === 'receiver') {
    const r = await startOtlpReceiver({ store: false }); // answers without parsing: we measure the cluster, not this
    process.on('message', (m: { type: string }) => m.type === 'counts' && process.send!({ type: 'counts', counts: r.counts }));
    console.log(`READY ${r.url}`);
  }
}

interface Child { proc: ChildProcess; url: string }

function startRole(name: string): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--role', name], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\S+)/.exec(out);
      if (m) resolve({ proc, url: m[1] });
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code}): ${out}`)));
  });
}

function receiverCounts(c: Child): Promise<{ requests: number; bytes: number }> {
  return new Promise((resolve) => {
    c.proc.once('message', (m: { counts: { requests: number; bytes: number } }) => resolve(m.counts));
    c.proc.send({ type: 'counts' });
  });
}

/** Pins a process (all its threads) to the given CPUs; false when taskset is missing or fails. */
function pin(pid: number, cpus: string): boolean {
  return spawnSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' }).status === 0;
}

async function setUp(cp: ClusterProcess, dataDir: string, upstream: string): Promise<{ url: string; token: string; admin: string }> {
  const api = await adminClient(cp.info.domain, dataDir);
  await api.apply({
    resources: [
      user('bench'),
      service('calc', { config: { upstream: { url: upstream }, http: { enableRequestBuffering: true, body: { mode: 'JSON' } } } }),
    ],
  });
  return { url: `${cp.info.url}/svc/calc/mcp`, token: await oauth2Token(api, cp.info.url, 'bench'), admin: api.accessToken! };
}

/** CPU seconds (user + system) of each thread of a process, by thread id (Linux /proc). */
function threadSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
      out.set(tid, (Number(fields[11]) + Number(fields[12])) / 100); // utime, stime in clock ticks (USER_HZ = 100)
    }
  } catch {
    /* the process or a thread went away: what was read stays */
  }
  return out;
}

/**
 * Per request: all threads, the main (request) thread, the busiest other thread — with export on, usually the OTLP
 * worker (a GC helper can be busier once the worker's share is small); with it off, whichever helper was busiest —
 * and the OTLP receiver process, which shares the machine.
 */
interface Run { rps: number; p99: number; errors: number; cpuUsPerReq: number; mainUsPerReq: number; topOtherUsPerReq: number; receiverUsPerReq: number }

/**
 * One autocannon run. Besides req/s it records the cluster's CPU time per request: on a shared or noisy
 * machine req/s moves with the neighbours, CPU per request much less.
 */
async function load(url: string, token: string, connections: number, duration: number, pid?: number, receiverPid?: number): Promise<Run> {
  const t0 = pid ? threadSeconds(pid) : new Map<string, number>();
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const r0 = receiverPid ? sum(threadSeconds(receiverPid)) : NaN;
  const r = await autocannon({
    url, connections, duration, method: 'POST', body: BODY,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  });
  const t1 = pid ? threadSeconds(pid) : new Map<string, number>();
  const r1 = receiverPid ? sum(threadSeconds(receiverPid)) : NaN;
  const used = [...t1].map(([tid, s]) => [tid, s - (t0.get(tid) ?? 0)] as const);
  const perReq = (sec: number) => (pid ? (sec / r.requests.total) * 1e6 : NaN);
  const main = used.find(([tid]) => tid === String(pid))?.[1] ?? 0;
  const topOther = Math.max(0, ...used.filter(([tid]) => tid !== String(pid)).map(([, s]) => s));
  return {
    rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx,
    cpuUsPerReq: perReq(used.reduce((a, [, s]) => a + s, 0)), mainUsPerReq: perReq(main), topOtherUsPerReq: perReq(topOther), receiverUsPerReq: perReq(r1 - r0),
  };
}

async function otlpMetrics(cp: ClusterProcess, admin: string): Promise<string> {
  const text = await (await fetch(`${cp.info.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
  return text.split('\n').filter((l) => l.startsWith('octelium_otlp_')).join('\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const duration = Number(arg('duration', '8'));
  const connections = Number(arg('connections', '50'));
  const repeats = Number(arg('repeats', '3'));
  const children: ChildProcess[] = [];
  const clusters: ClusterProcess[] = [];
  const stop = () => {
    for (const c of children) c.kill('SIGTERM');
    return Promise.all(clusters.map((c) => c.stop()));
  };
  // --pin: the clusters (all their threads, the OTLP worker included) get CPU 1, everything else (autocannon,
  // upstream, receiver) CPU 0. That charges the worker's CPU to the gateway: the worst case for "on".
  const pinned = process.argv.includes('--pin') && availableParallelism() >= 2 && pin(process.pid, '0');
  try {
    const upstream = await startRole('upstream');
    const receiver = await startRole('receiver');
    children.push(upstream.proc, receiver.proc);
    const offDir = tempDir('bench-telemetry-off-'), onDir = tempDir('bench-telemetry-on-');
    // OTEL_EXPORTER_OTLP_ENDPOINT is cleared for the "off" cluster so a developer's environment cannot turn it on.
    const savedEnv = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    const off = await spawnCluster(offDir);
    const on = await spawnCluster(onDir, ['--otlp-endpoint', receiver.url]);
    if (savedEnv !== undefined) process.env.OTEL_EXPORTER_OTLP_ENDPOINT = savedEnv;
    clusters.push(off, on);
    if (pinned) for (const c of [off, on]) pin(c.proc.pid!, '1');
    const targets = { off: await setUp(off, offDir, upstream.url), on: await setUp(on, onDir, upstream.url) };
    log(`upstream ${upstream.url}, receiver ${receiver.url}; c=${connections}, ${duration} s per run, ${repeats} round(s) off/on; ${pinned ? 'clusters pinned to CPU 1, the rest to CPU 0' : 'not pinned'}`);
    for (const t of Object.values(targets)) await load(t.url, t.token, connections, 2); // warm-up (JIT, connections)
    const results: Record<'off' | 'on', Run[]> = { off: [], on: [] };
    const pids = { off: off.proc.pid!, on: on.proc.pid! };
    for (let i = 0; i < repeats; i++) {
      for (const mode of i % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const r = await load(targets[mode].url, targets[mode].token, connections, duration, pids[mode], receiver.proc.pid);
        results[mode].push(r);
        log(`round ${i + 1} ${mode.padEnd(3)}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms, cluster CPU ${r.cpuUsPerReq.toFixed(0)} µs/request (main thread ${r.mainUsPerReq.toFixed(0)}, busiest other ${r.topOtherUsPerReq.toFixed(0)}; OTLP receiver process ${r.receiverUsPerReq.toFixed(0)}), errors ${r.errors}`);
      }
    }
    await new Promise((r) => setTimeout(r, 1500)); // let the last batches go out
    const counts = await receiverCounts(receiver);
    const offRps = median(results.off.map((r) => r.rps)), onRps = median(results.on.map((r) => r.rps));
    const ratio = onRps / offRps;
    const cost = (1 - ratio) * 100;
    console.log('\n## Gateway throughput with OTLP export off vs on (POST tools/call, bearer token, JSON bodyMap)\n');
    const offCpu = median(results.off.map((r) => r.cpuUsPerReq)), onCpu = median(results.on.map((r) => r.cpuUsPerReq));
    const offMain = median(results.off.map((r) => r.mainUsPerReq)), onMain = median(results.on.map((r) => r.mainUsPerReq));
    const offTop = median(results.off.map((r) => r.topOtherUsPerReq)), onTop = median(results.on.map((r) => r.topOtherUsPerReq));
    console.log('| export | req/s (median) | p99 ms (median) | cluster CPU µs/request, all threads | main thread | busiest other thread (on: usually the OTLP worker) | errors |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    console.log(`| off | ${offRps.toFixed(0)} | ${median(results.off.map((r) => r.p99))} | ${offCpu.toFixed(0)} | ${offMain.toFixed(0)} | ${offTop.toFixed(0)} | ${results.off.reduce((a, r) => a + r.errors, 0)} |`);
    console.log(`| on  | ${onRps.toFixed(0)} | ${median(results.on.map((r) => r.p99))} | ${onCpu.toFixed(0)} | ${onMain.toFixed(0)} | ${onTop.toFixed(0)} | ${results.on.reduce((a, r) => a + r.errors, 0)} |`);
    console.log(`\nthroughput ratio on/off: ${ratio.toFixed(3)}  (cost ${cost.toFixed(1)} %, target <= 10 %: ${cost <= 10 ? 'met' : 'NOT met'})`);
    console.log(`OTLP receiver process (shares the machine): ${median(results.on.map((r) => r.receiverUsPerReq)).toFixed(0)} µs/request with export on, ${median(results.off.map((r) => r.receiverUsPerReq)).toFixed(0)} off`);
    console.log(`CPU per request on/off: all threads ${(onCpu / offCpu).toFixed(3)}, main (request) thread ${(onMain / offMain).toFixed(3)}; export work runs on the OTLP worker thread`);
    console.log(`receiver got ${counts.requests} export requests, ${(counts.bytes / 1e6).toFixed(1)} MB`);
    console.log(`exporter counters of the "on" cluster:\n${await otlpMetrics(on, targets.on.admin)}`);
  } finally {
    await stop();
  }
}

const roleName = arg('role', '');
if (roleName) await role(roleName);
else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
