import type { AccessLog } from '@octelium-ts/shared';

/** One AccessLog as a row of `octeliumctl logs` (table, text line and the ink view). */
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

