/**
 * Issue 4's gateway benchmark: POST tools/call (JSON response) directly vs through the gateway vs nginx proxy_pass,
 * same upstream, same load generator, one run; prints ratios. Targets: gateway >= 0.6 × nginx throughput and
 * p99 added <= 2 ms at 50 concurrent.
 *
 * Processes: load generator (autocannon), cluster, upstream, nginx and the Node proxy floor each run in their own
 * process. The upstream is a plain node:http JSON-RPC server (bench/lib/upstream-server.ts), not the MCP SDK
 * server, whose per-request transport work would dominate and hide the proxy; `--sdk` adds a pass against the
 * SDK demo server (direct vs gateway (a)).
 *
 *   node --import tsx bench/gateway.ts [--duration 5] [--repeats 1] [--conc 1,50,200] [--rates 500,1000,2000] [--sdk] [--workers2] [--compiled] [--no-nginx] [--no-open-loop] [--no-install]
 * Then an open-loop pass (bench/lib/open-loop.ts): each target at a fixed offered rate, p50/p99/p99.9 added over direct.
 * --workers2 adds the Node floor proxy run as 2 worker processes (node:cluster): what using both cores buys.
 * --compiled runs the cluster from dist/ with plain node (what ships; builds it first) instead of its sources under
 * tsx, whose keepNames helper defines a `name` on every closure the request path creates.
 */
import { pathToFileURL } from 'node:url';
import { BASE_HEADERS, LoadGenerator, TOOLS_CALL, runHttpBench, type PointResult, type Target } from './lib/http-bench.js';
import type { OpenLoopResult } from './lib/open-loop.js';
import { installCleanup, stopAll } from './lib/procs.js';
import { checksTable, httpTable, type Check } from './lib/report.js';
import { startStack } from './lib/stack.js';
import { argValue, fmt, hasFlag, log, mdTable, numList } from './lib/util.js';

async function main(): Promise<void> {
  installCleanup();
  const durationS = Number(argValue('duration') ?? 5);
  const repeats = Number(argValue('repeats') ?? 1);
  const concurrencies = numList(argValue('conc') ?? '1,50,200');
  const stack = await startStack({ scenarios: ['a', 'b'], nginx: !hasFlag('no-nginx'), install: !hasFlag('no-install'), sdk: hasFlag('sdk'), nodeProxy2: hasFlag('workers2'), compiled: hasFlag('compiled') });
  const lg = await LoadGenerator.start();
  log(`gateway bench: ${stack.targets.map((t) => t.label).join(', ')}; c=${concurrencies.join(',')}; ${durationS} s per point, ${repeats} repeat(s)`);
  const points = await runHttpBench(lg, { targets: stack.targets, modes: ['json'], concurrencies, durationS, warmupS: 1, repeats });
  let sdkPoints: PointResult[] = [];
  if (stack.sdkTargets.length) sdkPoints = await runHttpBench(lg, { targets: stack.sdkTargets, modes: ['json'], concurrencies, durationS, warmupS: 1, repeats });
  const openLoop = hasFlag('no-open-loop') ? [] : await runOpenLoopPoints(lg, stack.targets, numList(argValue('rates') ?? '500,1000,2000'), durationS);
  await lg.stop();
  await stack.stop();
  await stopAll();

  console.log('\n## POST tools/call, JSON response (minimal node:http upstream)\n');
  console.log(httpTable(points, stack.targets, 'json'));
  if (sdkPoints.length) {
    console.log('\n## POST tools/call, JSON response (MCP SDK demo server as the upstream)\n');
    console.log(httpTable(sdkPoints, stack.sdkTargets, 'json'));
  }
  if (openLoop.length) {
    console.log('\n## Open loop: fixed offered rate, latency from the scheduled start (POST tools/call, JSON)\n');
    console.log(openLoopTable(openLoop));
  }
  const checks: Check[] = [];
  for (const id of ['a', 'b']) {
    const p = points.find((x) => x.target === id && x.connections === 50);
    if (!p) continue;
    const label = stack.targets.find((t) => t.id === id)!.label;
    checks.push({ name: label, target: '>= 0.6 × nginx req/s @50', measured: fmt.ratio(p.vsNginx?.rps), met: p.vsNginx ? p.vsNginx.rps >= 0.6 : undefined, note: 'nginx not run' });
    checks.push({ name: label, target: 'p99 added <= 2 ms @50', measured: `${fmt.ms(p.vsDirect?.p99AddedMs)} ms`, met: p.vsDirect ? p.vsDirect.p99AddedMs <= 2 : undefined });
  }
  const b1000 = openLoop.find((p) => p.target === 'b' && p.rate === 1000);
  if (b1000) checks.push({ name: 'gateway (b)', target: 'p99 added <= 1 ms @ 1 000 req/s open loop', measured: `${fmt.ms(b1000.p99Added)} ms`, met: b1000.p99Added !== undefined ? b1000.p99Added <= 1 : undefined });
  console.log('\n' + checksTable(checks));
}

interface OpenLoopPoint { target: string; label: string; rate: number; r: OpenLoopResult; p50Added?: number; p99Added?: number; p999Added?: number }

/** Every target at each rate, interleaved (rate → target), so machine drift hits them alike. */
async function runOpenLoopPoints(lg: LoadGenerator, targets: Target[], rates: number[], durationS: number): Promise<OpenLoopPoint[]> {
  const out: OpenLoopPoint[] = [];
  for (const rate of rates) {
    for (const t of targets) {
      await lg.openLoop({ url: t.url, headers: { ...BASE_HEADERS, ...t.headers }, body: t.body ?? TOOLS_CALL, rate, durationS: 1 }); // warm-up
      const r = await lg.openLoop({ url: t.url, headers: { ...BASE_HEADERS, ...t.headers }, body: t.body ?? TOOLS_CALL, rate, durationS });
      log(`open loop ${rate} req/s ${t.label.padEnd(28)} done ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)}  p99 ${r.p99.toFixed(2)}  p99.9 ${r.p999.toFixed(2)} ms${r.failed ? `  (${r.failed} failed)` : ''}`);
      out.push({ target: t.id, label: t.label, rate, r });
    }
    const direct = out.find((p) => p.target === 'direct' && p.rate === rate);
    for (const p of out.filter((x) => x.rate === rate && direct && x !== direct)) {
      p.p50Added = p.r.p50 - direct!.r.p50;
      p.p99Added = p.r.p99 - direct!.r.p99;
      p.p999Added = p.r.p999 - direct!.r.p999;
    }
  }
  return out;
}

function openLoopTable(points: OpenLoopPoint[]): string {
  const rows = points.map((p) => [String(p.rate), p.label, p.r.rps.toFixed(0), fmt.ms(p.r.p50), fmt.ms(p.r.p99), fmt.ms(p.r.p999), p.p99Added === undefined ? '—' : `${fmt.ms(p.p50Added)} / ${fmt.ms(p.p99Added)} / ${fmt.ms(p.p999Added)}`, String(p.r.failed)]);
  return mdTable(['offered req/s', 'target', 'done req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'added over direct p50 / p99 / p99.9 ms', 'failed'], rows);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  });
}
