/** Markdown rendering of bench results. */
import type { Mode, PointResult, Target } from './http-bench.js';
import { fmt, mdTable } from './util.js';

export function httpTable(points: PointResult[], targets: Array<Pick<Target, 'id' | 'label'>>, mode: Mode): string {
  const rows: string[][] = [];
  const concs = [...new Set(points.filter((p) => p.mode === mode).map((p) => p.connections))].sort((a, b) => a - b);
  for (const c of concs) {
    for (const t of targets) {
      const p = points.find((x) => x.target === t.id && x.mode === mode && x.connections === c);
      if (!p) continue;
      rows.push([
        t.label, String(c), fmt.n(p.rps), fmt.ms(p.p50), fmt.ms(p.p99),
        t.id === 'direct' ? '1.00' : fmt.ratio(p.vsDirect?.rps),
        t.id === 'nginx' ? '1.00' : fmt.ratio(p.vsNginx?.rps),
        t.id === 'direct' ? '—' : fmt.ms(p.vsDirect?.p50AddedMs),
        t.id === 'direct' ? '—' : fmt.ms(p.vsDirect?.p99AddedMs),
        p.cpuUsPerReq === undefined ? '—' : `${fmt.n(p.cpuUsPerReq)} (${fmt.n(p.cpuPct)}%)`,
        p.errors ? String(p.errors) : '0',
      ]);
    }
  }
  return mdTable(['target', 'conc', 'req/s', 'p50 ms', 'p99 ms', '× direct', '× nginx', 'p50 added ms', 'p99 added ms', 'proxy CPU µs/req (% core)', 'non-2xx/err'], rows);
}

export interface Check { name: string; target: string; measured: string; met: boolean | undefined; note?: string }

export function checksTable(checks: Check[]): string {
  return mdTable(['target', 'goal', 'measured', 'result'], checks.map((c) => [c.name, c.target, c.measured, c.met === undefined ? `n/a${c.note ? ` (${c.note})` : ''}` : c.met ? 'met' : '**missed**']));
}
