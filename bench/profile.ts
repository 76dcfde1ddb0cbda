/**
 * CPU profile of the cluster under gateway load: the cluster runs with `--cpu-prof` while the load generator
 * (another process) drives POST tools/call through one scenario; the profile is written when the cluster exits
 * and summarised (self time by function and by code location, product functions by inclusive time).
 *
 *   node --import tsx bench/profile.ts [--scenario a|b|c|d] [--conc 50] [--duration 10] [--sse] [--compiled]
 * Output: bench/results/profiles/<scenario>-*.cpuprofile (open in Chrome DevTools) and a Markdown summary.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setupGateway, spawnClusterProc, startTunnelAgent, waitUntilRoutable } from './lib/cluster.js';
import { renderSummary, summarise, type ProfileSummary } from './lib/cpuprofile.js';
import { BASE_HEADERS, LoadGenerator, TOOLS_CALL, verifyTarget, type Mode } from './lib/http-bench.js';
import type { LoadResult } from './lib/loadgen-worker.js';
import { installCleanup, startChild, stopAll } from './lib/procs.js';
import { REPO_ROOT, RESULTS_DIR, argValue, hasFlag, log } from './lib/util.js';

export interface ProfileRun { scenario: string; mode: Mode; connections: number; load: LoadResult; file: string; summary: ProfileSummary; markdown: string; agentFile?: string }

export async function profileGateway(o: { scenario: 'a' | 'b' | 'c' | 'd'; connections: number; durationS: number; mode: Mode; lg?: LoadGenerator; compiled?: boolean }): Promise<ProfileRun> {
  const stamp = `${o.scenario}-${o.mode}-c${o.connections}-${Date.now()}`;
  // One dir per run: node writes one profile per thread (tsx's module-loader worker is one); the main thread's is kept.
  const dir = join(RESULTS_DIR, 'profiles', stamp);
  mkdirSync(dir, { recursive: true });
  const upstream = startChild('upstream', join(REPO_ROOT, 'bench/lib/upstream-server.ts'), [], { ipc: true });
  const { ports } = await upstream.message<{ ports: number[] }>('ready');
  const cluster = await spawnClusterProc({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], compiled: o.compiled });
  const gw = await setupGateway(cluster, `http://127.0.0.1:${ports[0]}`);
  const url = `${cluster.url}/svc/${gw.services[o.scenario]}/mcp`;
  // (d): the agent is profiled too, into <dir>/agent.
  const agent = o.scenario === 'd' ? await startTunnelAgent(cluster, gw.services.d, 8000, ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'agent')}`]) : undefined;
  if (agent && !agent.child) throw new Error(`scenario (d): ${agent.pending}`);
  await waitUntilRoutable(url, gw.token);
  const target = { id: o.scenario, label: o.scenario, url, headers: { authorization: `Bearer ${gw.token}` }, expectText: o.scenario === 'c' ? '1004' : '2004' };
  await verifyTarget(target, o.mode);
  const lg = o.lg ?? (await LoadGenerator.start());
  log(`profiling gateway (${o.scenario}) ${o.mode} at c=${o.connections} for ${o.durationS} s`);
  const startUs = Number(process.hrtime.bigint() / 1000n) + (1 + 0.2) * 1e6; // after the 1 s warm-up
  const load = await lg.run({
    url: o.mode === 'sse' ? `${url}-sse` : url, method: 'POST', headers: { ...BASE_HEADERS, ...target.headers }, body: TOOLS_CALL,
    connections: o.connections, durationS: o.durationS, warmupS: 1,
  });
  const endUs = Number(process.hrtime.bigint() / 1000n) - 0.2e6;
  if (!o.lg) await lg.stop();
  await agent?.child?.stop();
  await cluster.stop();
  await upstream.stop();
  // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread (the gateway).
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const main = files.find((f) => f.split('.')[4] === '0') ?? files.sort((x, y) => statSync(join(dir, y)).size - statSync(join(dir, x)).size)[0];
  if (!main) throw new Error(`no profile written in ${dir}`);
  const file = join(dir, main);
  const summary = summarise(file, 30, { startUs, endUs });
  let agentMd = '';
  let agentFile: string | undefined;
  if (agent) {
    const af = readdirSync(join(dir, 'agent')).filter((f) => f.endsWith('.cpuprofile'));
    agentFile = join(dir, 'agent', af.find((f) => f.split('.')[4] === '0') ?? af[0]);
    agentMd = `\n\n## The connect agent (other process) during the same load\n\n${renderSummary(summarise(agentFile, 15, { startUs, endUs }), 15)}`;
  }
  const header = `Gateway (${o.scenario}), ${o.mode.toUpperCase()} tools/call, ${o.connections} concurrent, ${o.durationS} s: ${load.rps.toFixed(0)} req/s, p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(2)} ms (while profiling)`;
  const markdown = `${header}\n\n${renderSummary(summary, 25)}${agentMd}`;
  writeFileSync(file.replace(/\.cpuprofile$/, '.md'), markdown + '\n');
  return { scenario: o.scenario, mode: o.mode, connections: o.connections, load, file, summary, markdown, agentFile };
}

async function main(): Promise<void> {
  installCleanup();
  const r = await profileGateway({
    scenario: (argValue('scenario') ?? 'b') as 'a' | 'b' | 'c' | 'd',
    connections: Number(argValue('conc') ?? 50),
    durationS: Number(argValue('duration') ?? 10),
    mode: hasFlag('sse') ? 'sse' : 'json',
    compiled: hasFlag('compiled'),
  });
  console.log(r.markdown);
  console.log(`\n(profile: ${r.file})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  });
}
