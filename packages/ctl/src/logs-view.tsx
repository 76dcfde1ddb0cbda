import React from 'react';
import { Box, Text } from 'ink';
import { LOG_COLUMNS as COLS, type LogRow } from './log-row.js';

/** Live AccessLog table for `octeliumctl logs -f` in a terminal: newest rows at the bottom. */
export function LogsView({ rows, max = 20 }: { rows: LogRow[]; max?: number }) {
  return (
    <Box flexDirection="column">
      <Box>
        {COLS.map(([k, h, w]) => (
          <Box key={k} width={w + 1} flexShrink={0}><Text bold>{h}</Text></Box>
        ))}
      </Box>
      {rows.slice(-max).map((r, i) => (
        <Box key={i}>
          {COLS.map(([k, , w]) => (
            <Box key={k} width={w + 1} flexShrink={0}>
              <Text color={k === 'status' ? (r.status === 'ALLOWED' ? 'green' : 'red') : undefined} wrap="truncate">{String(r[k])}</Text>
            </Box>
          ))}
        </Box>
      ))}
      <Text dimColor>{rows.length} request(s) — Ctrl-C to stop</Text>
    </Box>
  );
}
