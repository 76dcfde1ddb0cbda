import React from 'react';
import { Box, Text } from 'ink';
import type { AccessLog } from '@octelium-ts/shared';

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

const COLS: Array<[keyof LogRow, string, number]> = [
  ['time', 'TIME', 13], ['status', 'STATUS', 8], ['code', 'CODE', 5], ['user', 'USER', 14], ['service', 'SERVICE', 14], ['method', 'METHOD', 7], ['path', 'PATH', 18], ['mcp', 'MCP', 24],
];

/** Live AccessLog table for `octeliumctl logs -f` in a terminal: newest rows at the bottom. */
export function LogsView({ rows, max = 20 }: { rows: LogRow[]; max?: number }) {
  return (
    <Box flexDirection="column">
      <Box>
        {COLS.map(([k, h, w]) => (
          <Box key={k} width={w + 1}><Text bold>{h}</Text></Box>
        ))}
      </Box>
      {rows.slice(-max).map((r, i) => (
        <Box key={i}>
          {COLS.map(([k, , w]) => (
            <Box key={k} width={w + 1}>
              <Text color={k === 'status' ? (r.status === 'ALLOWED' ? 'green' : 'red') : undefined} wrap="truncate">{String(r[k])}</Text>
            </Box>
          ))}
        </Box>
      ))}
      <Text dimColor>{rows.length} request(s) — Ctrl-C to stop</Text>
    </Box>
  );
}
