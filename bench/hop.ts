/**
 * What a second Node proxy hop costs on this machine: the bare node:http + undici floor proxy alone, against two of
 * them chained (client → proxy → proxy → upstream), alternated in the same minutes. JSON tools/call at 50 concurrent
 * (req/s) and 10 MB downloads (MB/s). The connect tunnel adds the agent as a second full hop on the same cores, so
 * this is the bound to read its (d)/(a) ratios against (docs/performance.md, issue 17's goals, session 4).
 *
 *   node --conditions=octelium-source --import tsx bench/hop.ts [--repeats 5] [--duration 3]
 */
import { request } from 'undici';
import { LoadGenerator, BASE_HEADERS, TOOLS_CALL } from './lib/http-bench.js';
import { installCleanup, stopAll } from './lib/procs.js';
import { startUpstream, startNodeProxy } from './lib/stack.js';
import { argValue } from './lib/util.js';
installCleanup();
const up = await startUpstream();
const one = await startNodeProxy(up.ports[0]);
const hop2 = await startNodeProxy(up.ports[0]);
const two = await startNodeProxy(hop2.port); // client → two → hop2 → upstream: a second Node proxy hop, as the agent is
const targets = [{ label: 'one floor proxy', port: one.port }, { label: 'two chained', port: two.port }];
const lg = await LoadGenerator.start();
const rps: Record<string, number[]> = {}; const mbs: Record<string, number[]> = {};
async function download(port: number): Promise<number> {
  const t = performance.now(); const r = await request(`http://127.0.0.1:${port}/big?bytes=${10 * 1024 * 1024}`); let n = 0;
  for await (const c of r.body) n += (c as Buffer).length; return n / 1048576 / ((performance.now() - t) / 1000);
}
// Warm both paths' JIT first: the first downloads run at a fraction of later ones.
for (const t of targets) for (let i = 0; i < 4; i++) await download(t.port);
const repeats = Number(argValue('repeats') ?? 5);
const durationS = Number(argValue('duration') ?? 3);
for (let rep = 0; rep < repeats; rep++) for (const t of targets) {
  const r: any = await lg.run({ url: `http://127.0.0.1:${t.port}/mcp`, method: 'POST', headers: BASE_HEADERS, body: TOOLS_CALL, connections: 50, durationS, warmupS: 0 });
  (rps[t.label] ??= []).push(r.rps);
  const m: number[] = []; for (let i = 0; i < 3; i++) m.push(await download(t.port)); m.sort((a, b) => a - b);
  (mbs[t.label] ??= []).push(m[1]);
  console.log(`rep ${rep} ${t.label.padEnd(16)} ${r.rps.toFixed(0)} req/s  10 MB ${m[1].toFixed(0)} MB/s`);
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const ratios = (x: Record<string, number[]>) => x['two chained'].map((v, i) => v / x['one floor proxy'][i]);
console.log('two ÷ one, JSON req/s per repeat', ratios(rps).map((r) => r.toFixed(2)).join(' '), 'median', med(ratios(rps)).toFixed(2));
console.log('two ÷ one, 10 MB MB/s per repeat', ratios(mbs).map((r) => r.toFixed(2)).join(' '), 'median', med(ratios(mbs)).toFixed(2));
await lg.stop(); await stopAll();
