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
 *   node --import tsx bench/gateway.ts [--duration 5] [--repeats 1] [--conc 1,50,200] [--sdk] [--workers2] [--no-nginx] [--no-install]
 * --workers2 adds the Node floor proxy run as 2 worker processes (node:cluster): what using both cores buys.
 */
import { pathToFileURL } from 'node:url';
import { LoadGenerator, runHttpBench, type PointResult } from './lib/http-bench.js';
import { installCleanup, stopAll } from './lib/procs.js';
import { checksTable, httpTable, type Check } from './lib/report.js';
import { startStack } from './lib/stack.js';
import { argValue, fmt, hasFlag, log, numList } from './lib/util.js';

async function main(): Promise<void> {
  installCleanup();
  const durationS = Number(argValue('duration') ?? 5);
  const repeats = Number(argValue('repeats') ?? 1);
  const concurrencies = numList(argValue('conc') ?? '1,50,200');
  const stack = await startStack({ scenarios: ['a', 'b'], nginx: !hasFlag('no-nginx'), install: !hasFlag('no-install'), sdk: hasFlag('sdk'), nodeProxy2: hasFlag('workers2') });
  const lg = await LoadGenerator.start();
  log(`gateway bench: ${stack.targets.map((t) => t.label).join(', ')}; c=${concurrencies.join(',')}; ${durationS} s per point, ${repeats} repeat(s)`);
  const points = await runHttpBench(lg, { targets: stack.targets, modes: ['json'], concurrencies, durationS, warmupS: 1, repeats });
  let sdkPoints: PointResult[] = [];
  if (stack.sdkTargets.length) sdkPoints = await runHttpBench(lg, { targets: stack.sdkTargets, modes: ['json'], concurrencies, durationS, warmupS: 1, repeats });
  await lg.stop();
  await stack.stop();
  await stopAll();

  console.log('\n## POST tools/call, JSON response (minimal node:http upstream)\n');
  console.log(httpTable(points, stack.targets, 'json'));
  if (sdkPoints.length) {
    console.log('\n## POST tools/call, JSON response (MCP SDK demo server as the upstream)\n');
    console.log(httpTable(sdkPoints, stack.sdkTargets, 'json'));
  }
  const checks: Check[] = [];
  for (const id of ['a', 'b']) {
    const p = points.find((x) => x.target === id && x.connections === 50);
    if (!p) continue;
    const label = stack.targets.find((t) => t.id === id)!.label;
    checks.push({ name: label, target: '>= 0.6 × nginx req/s @50', measured: fmt.ratio(p.vsNginx?.rps), met: p.vsNginx ? p.vsNginx.rps >= 0.6 : undefined, note: 'nginx not run' });
    checks.push({ name: label, target: 'p99 added <= 2 ms @50', measured: `${fmt.ms(p.vsDirect?.p99AddedMs)} ms`, met: p.vsDirect ? p.vsDirect.p99AddedMs <= 2 : undefined });
  }
  console.log('\n' + checksTable(checks));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  });
}
