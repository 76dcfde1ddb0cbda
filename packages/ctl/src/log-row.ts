import type { AccessLog } from '@octelium-ts/shared';

/** One AccessLog as a row of `octeliumctl logs` (the text table and the ink view). */
export interface LogRow { time: string; status: string; user: string; service: string; method: string; path: string; code: number; mcp: string }

export function toRow(l: AccessLog): LogRow {
  const c = l.entry.common;
  const req = l.entry.info.http.request;
  const body = req.bodyMap as { method?: string; params?: { name?: string } } | undefined;
  return {
    time: l.metadata.createdAt.slice(11, 23),
    status: c.status,
    user: c.userRef?.name ?? (c.isAnonymous ? '(anonymous)' : '-'),
    service: c.serviceRef?.name ?? '-',
    method: req.method,
    path: req.path,
    code: l.entry.info.http.response.code,
    mcp: body?.method ? `${body.method}${body.params?.name ? ` ${body.params.name}` : ''}` : '',
  };
}


/**
 * The columns of `octeliumctl logs`, with their widths: fixed, so a live tail (`-f`) can print each row as it
 * arrives and still line up with the header, and `logs` and `logs -f` print the very same lines.
 */
export const LOG_COLUMNS: ReadonlyArray<readonly [keyof LogRow, string, number]> = [
  ['time', 'TIME', 13], ['status', 'STATUS', 8], ['code', 'CODE', 5], ['user', 'USER', 14], ['service', 'SERVICE', 14],
  ['method', 'METHOD', 7], ['path', 'PATH', 18], ['mcp', 'MCP', 24],
];

const GAP = ' ';

/** A cell never hides what it holds: a longer value pushes the rest of its line right rather than being cut. */
function cells(values: string[]): string {
  return values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(LOG_COLUMNS[i][2]))).join(GAP).trimEnd();
}

export function logHeader(): string {
  return cells(LOG_COLUMNS.map(([, h]) => h));
}

export function logLine(r: LogRow): string {
  return cells(LOG_COLUMNS.map(([k]) => String(r[k])));
}
