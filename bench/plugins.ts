/**
 * Lua plugin micro-benchmark: latency added to one request by `LuaPluginHost.runOnRequest` running the seed's
 * `check-inputs` script (unchanged) on a `tools/call add` body — decode, identity injection, clamping, re-encode;
 * the http.client branch (`sub`) is not taken. Target p50 <= 100 µs. Run: `node --import tsx bench/plugins.ts`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseManifests, type Resource } from '@octelium-ts/shared';
import { LuaPluginHost, type LuaRequestState } from '../packages/cluster/src/plugins/lua/index.js';
import { mcpRequestFacts } from './lib/facts.js';

const SEED = fileURLToPath(new URL('../packages/cluster/test/fixtures/seed/05-lua-plugin.yaml', import.meta.url));

/** The seed Service as `apply` would store it (validated, defaults filled in). */
function seedService(): Resource {
  const { docs, errors } = parseManifests(readFileSync(SEED, 'utf8'), SEED);
  if (errors.length || docs.length !== 1) throw new Error(`seed manifest: ${JSON.stringify(errors)}`);
  const doc = docs[0].resource;
  return { ...doc, metadata: { ...doc.metadata, uid: 'svc-uid-1', resourceVersion: '1' } };
}


function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

export interface PluginsBenchResult {
  p50Us: number;
  p99Us: number;
  meanUs: number;
  emptyScriptP50Us: number;
  firstCallMs: number;
}

async function measure(iterations: number, run: (i: number) => Promise<unknown>): Promise<number[]> {
  const samples = new Array<number>(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    await run(i);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return samples.sort((a, b) => a - b);
}

export async function runPluginsBench(iterations = 20_000): Promise<PluginsBenchResult> {
  const service = seedService();
  const script = (service.spec as { config: { http: { plugins: { lua: { inline: string } }[] } } }).config.http.plugins[0].lua.inline;
  const user: Resource = {
    apiVersion: 'core/v1',
    kind: 'User',
    metadata: { name: 'alice', uid: '5b6c1d7e-0f5a-4e39-9d0c-6f0e4b2f9a10' },
    spec: { type: 'HUMAN', email: 'alice@example.com', groups: ['dev'] },
  };
  const ctx = mcpRequestFacts(service, user);
  const key = `${service.metadata.uid}/${service.metadata.resourceVersion}/check-inputs`;
  // Bodies as they arrive: a few shapes so both clamping branches and the rename run.
  const bodies = Array.from({ length: 64 }, (_, i) =>
    JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: i % 2 ? 'add' : 'another-add', arguments: { a: (i % 5) - 2, b: 900 + i * 5 } } }),
  );
  const state = (i: number): LuaRequestState => ({ method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json' }, body: bodies[i & 63] });

  const host = new LuaPluginHost();
  try {
    const t0 = process.hrtime.bigint();
    const first = state(1);
    await host.runOnRequest(key, script, ctx, first);
    const firstCallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const out = JSON.parse(first.body!) as { params: { name: string; arguments: Record<string, unknown> } };
    if (out.params.name !== 'add' || out.params.arguments.userEmail !== 'alice@example.com' || out.params.arguments.a !== 0) {
      throw new Error(`bench setup is wrong: ${first.body}`);
    }

    const seed = (i: number) => host.runOnRequest(key, script, ctx, state(i));
    const empty = (i: number) => host.runOnRequest('empty', 'function onRequest(ctx) end', ctx, state(i));
    // Warm-up: JIT for the host functions and the engine paths.
    await measure(iterations / 4, seed);
    await measure(iterations / 4, empty);
    const samples = await measure(iterations, seed);
    const emptySamples = await measure(iterations, empty);
    return {
      p50Us: percentile(samples, 0.5),
      p99Us: percentile(samples, 0.99),
      meanUs: samples.reduce((a, b) => a + b, 0) / samples.length,
      emptyScriptP50Us: percentile(emptySamples, 0.5),
      firstCallMs,
    };
  } finally {
    await host.close();
  }
}

async function main(): Promise<void> {
  const r = await runPluginsBench();
  const fmt = (n: number) => n.toFixed(1).padStart(6);
  console.log('Lua plugin (seed check-inputs script, tools/call add, no http.client), after warm-up');
  console.log(`  added latency p50   ${fmt(r.p50Us)} µs   (target <= 100 µs)`);
  console.log(`  added latency p99   ${fmt(r.p99Us)} µs`);
  console.log(`  added latency mean  ${fmt(r.meanUs)} µs`);
  console.log(`  empty onRequest p50 ${fmt(r.emptyScriptP50Us)} µs   (fixed cost of a hook call)`);
  console.log(`  first call (wasm load + engine compile) ${r.firstCallMs.toFixed(1)} ms`);
  if (r.p50Us > 100) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
