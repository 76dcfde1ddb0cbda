import { KINDS, OcteliumError, toYaml, type KindName, type Resource } from '@octelium-ts/shared';

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json';

export function parseFormat(o: string | undefined): OutputFormat {
  if (o === undefined) return 'table';
  if (o === 'table' || o === 'wide' || o === 'yaml' || o === 'json') return o;
  throw new OcteliumError('INVALID_ARGUMENT', `unknown output format "${o}" (use table, wide, yaml or json)`);
}

/** A plain aligned table, like kubectl's. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === undefined || c === null ? '' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ')).join('\n');
}

/** A list in yaml/json form re-applies as is: `kind: List` + items, which `apply` expands. */
export function formatResources(kind: KindName, items: Resource[], single: boolean, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(single ? items[0] : { apiVersion: 'core/v1', kind: 'List', items }, null, 2);
  if (format === 'yaml') return toYaml(single ? items[0] : { apiVersion: 'core/v1', kind: 'List', items }).trimEnd();
  if (!items.length) return `No ${KINDS[kind].plural} found`;
  // -o wide adds the columns a kind marks `wide` (declared in kinds.ts, just before AGE).
  const cols = KINDS[kind].columns.filter((c) => format === 'wide' || !c.wide);
  return table(cols.map((c) => c.header), items.map((r) => cols.map((c) => c.get(r))));
}
