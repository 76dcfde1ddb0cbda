/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function, inclusive time of product functions,
 * and self time grouped by where the code lives (node core, undici, cel-js, wasmoon, product files …).
 *   node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, mdTable } from './util.js';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface FnStat { fn: string; where: string; group: string; selfMs: number; selfPct: number; totalMs: number; totalPct: number; maxRunMs?: number }
export interface ProfileSummary { file: string; wallMs: number; busyMs: number; idlePct: number; gcPct: number; top: FnStat[]; product: FnStat[]; stretches: FnStat[]; groups: Array<{ group: string; selfMs: number; selfPct: number }> }

function shortUrl(url: string): string {
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(REPO_ROOT)) u = u.slice(REPO_ROOT.length + 1);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '');
  return u;
}

export function groupOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native/builtin)';
  if (url.startsWith('node:')) {
    if (/node:internal\/(http|_http)|node:_http|node:http/.test(url)) return 'node http';
    if (/net|stream|tcp|socket|dns/.test(url)) return 'node net/streams';
    if (/crypto/.test(url)) return 'node crypto';
    if (/timers|process\/task_queues|async_hooks|events|promise/.test(url)) return 'node events/timers/promises';
    if (/url/.test(url)) return 'node url';
    return 'node (other)';
  }
  const s = shortUrl(url);
  const pkg = /^(@[^/]+\/[^/]+|[^/]+)\//.exec(s)?.[1];
  if (s.startsWith('packages/')) return s.replace(/^packages\/([^/]+)\/(?:src|dist)\/([^/]+).*/, 'product $1/$2');
  if (url.includes('node_modules')) return pkg ?? s;
  return s;
}

/**
 * `window` (µs, CLOCK_MONOTONIC — the clock of V8 profiles and of process.hrtime in any process on the machine)
 * keeps only the samples taken while the load ran, so start-up compilation does not pollute the picture.
 */
export function summarise(file: string, topN = 25, window?: { startUs: number; endUs: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // tsx compiles each module onto one line, so V8 line numbers are useless for product code: anonymous
  // functions are named after their nearest named caller instead ("(anonymous in flush)").
  const names = new Map<number, string>();
  const nameOf = (n: ProfileNode): string => {
    const cached = names.get(n.id);
    if (cached) return cached;
    let name = n.callFrame.functionName;
    if (!name) {
      let up = parent.get(n.id);
      while (up !== undefined && !byId.get(up)!.callFrame.functionName) up = parent.get(up);
      name = up !== undefined && byId.get(up)!.callFrame.url ? `(anonymous in ${byId.get(up)!.callFrame.functionName})` : '(anonymous)';
    }
    names.set(n.id, name);
    return name;
  };
  const key = (n: ProfileNode) => `${nameOf(n)}\u0000${n.callFrame.url}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const groups = new Map<string, number>();
  // Longest run of consecutive samples with a function on the stack: for timer-driven work (AccessLog flush) and GC
  // this is one call, i.e. how long it blocked the event loop.
  const run = new Map<string, number>();
  const chains = new Map<string, Set<string>>();
  const maxRun = new Map<string, number>();
  let prevKeys = new Set<string>();
  let idle = 0, gc = 0, wall = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    if (window && (t < window.startUs || t > window.endUs)) continue;
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i]) / 1000;
    wall += dt;
    const n = byId.get(p.samples[i])!;
    const fn = n.callFrame.functionName;
    if (fn === '(idle)') {
      idle += dt;
      prevKeys = new Set();
      continue;
    }
    if (fn === '(garbage collector)') gc += dt;
    const k = key(n);
    self.set(k, (self.get(k) ?? 0) + dt);
    const g = groupOf(n.callFrame.url, fn);
    groups.set(g, (groups.get(g) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const kk = key(byId.get(id)!);
      if (seen.has(kk)) continue;
      seen.add(kk);
      if (!chains.has(kk)) {
        const roots = new Set<string>();
        for (let up = parent.get(id); up !== undefined; up = parent.get(up)) roots.add(byId.get(up)!.callFrame.functionName);
        chains.set(kk, roots);
      }
      total.set(kk, (total.get(kk) ?? 0) + dt);
      const r = (prevKeys.has(kk) ? run.get(kk) ?? 0 : 0) + dt;
      run.set(kk, r);
      if (r > (maxRun.get(kk) ?? 0)) maxRun.set(kk, r);
    }
    prevKeys = seen;
  }
  const busy = wall - idle;
  const stat = (k: string): FnStat => {
    const [fn, loc] = k.split('\u0000');
    const url = loc.replace(/:\d+$/, '');
    return {
      fn, where: url ? (loc.endsWith(':1') ? shortUrl(url) : `${shortUrl(url)}:${loc.split(':').at(-1)}`) : '', group: groupOf(url, fn),
      selfMs: self.get(k) ?? 0, selfPct: (100 * (self.get(k) ?? 0)) / busy, totalMs: total.get(k) ?? 0, totalPct: (100 * (total.get(k) ?? 0)) / busy,
      maxRunMs: maxRun.get(k),
    };
  };
  const top = [...self.keys()].sort((a, b) => self.get(b)! - self.get(a)!).slice(0, topN).map(stat);
  const product = [...total.keys()].filter((k) => k.includes(`${REPO_ROOT}/packages/`)).sort((a, b) => total.get(b)! - total.get(a)!).slice(0, topN).map(stat);
  // Timer/GC-driven work only: request-driven functions (handle, emit …) run back to back under load and would merge.
  const timerDriven = (k: string) => k.startsWith('(garbage collector)') || (k.includes(`${REPO_ROOT}/packages/`) && [...(chains.get(k) ?? [])].some((c) => c === 'listOnTimeout' || c === 'processImmediate'));
  const stretches = [...maxRun.keys()].filter(timerDriven).sort((a, b) => maxRun.get(b)! - maxRun.get(a)!).slice(0, 8).map(stat);
  return {
    file, wallMs: wall, busyMs: busy, idlePct: (100 * idle) / wall, gcPct: (100 * gc) / busy, top, product, stretches,
    groups: [...groups.entries()].sort((a, b) => b[1] - a[1]).map(([group, ms]) => ({ group, selfMs: ms, selfPct: (100 * ms) / busy })),
  };
}

export function renderSummary(s: ProfileSummary, topN = 25): string {
  const pct = (x: number) => x.toFixed(1);
  return [
    `profile ${shortUrl(s.file)}: ${(s.wallMs / 1000).toFixed(1)} s sampled, busy ${(100 - s.idlePct).toFixed(1)}% (idle ${pct(s.idlePct)}%), GC ${pct(s.gcPct)}% of busy time`,
    '',
    '### Self time by function (% of busy CPU time)',
    '',
    mdTable(['self %', 'incl %', 'function', 'where'], s.top.slice(0, topN).map((f) => [pct(f.selfPct), pct(f.totalPct), `\`${f.fn}\``, f.where])),
    '',
    '### Self time by code location',
    '',
    mdTable(['self %', 'group'], s.groups.slice(0, 20).map((g) => [pct(g.selfPct), g.group])),
    '',
    '### Longest single stretches of timer-driven work and GC (event-loop blocking)',
    '',
    mdTable(['longest ms', 'incl %', 'function', 'where'], s.stretches.map((f) => [(f.maxRunMs ?? 0).toFixed(1), pct(f.totalPct), `\`${f.fn}\``, f.where])),
    '',
    '### Product functions by inclusive time',
    '',
    mdTable(['incl %', 'self %', 'function', 'where'], s.product.slice(0, topN).map((f) => [pct(f.totalPct), pct(f.selfPct), `\`${f.fn}\``, f.where])),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const topN = Number(process.argv[3] ?? 25);
  const w = process.argv[4]?.split('-').map(Number);
  console.log(renderSummary(summarise(process.argv[2], topN, w ? { startUs: w[0], endUs: w[1] } : undefined), topN));
}
