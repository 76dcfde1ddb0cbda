import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import { render } from 'ink-testing-library';
import type { AccessLog } from '@octelium-ts/shared';
import { logHeader, logLine, toRow, type LogRow } from '../src/log-row.js';
import { LogsView } from '../src/logs-view.js';

function accessLog(over: { user?: string; status?: 'ALLOWED' | 'DENIED'; code?: number; bodyMap?: unknown; service?: string; at?: string }): AccessLog {
  const at = over.at ?? '2025-01-02T03:04:05.678Z';
  return {
    apiVersion: 'core/v1',
    kind: 'AccessLog',
    metadata: { id: Math.random().toString(36).slice(2), createdAt: at },
    entry: {
      common: {
        startedAt: at, endedAt: at, status: over.status ?? 'ALLOWED', mode: 'HTTP', reason: { type: 'POLICY_MATCH' },
        ...(over.user ? { userRef: { apiVersion: 'core/v1', kind: 'User', name: over.user } } : {}),
        serviceRef: { apiVersion: 'core/v1', kind: 'Service', name: over.service ?? 'my-mcp' },
        isPublic: true, isAnonymous: !over.user,
      },
      info: {
        http: {
          request: { path: '/mcp', uri: '/mcp', method: 'POST', bodyBytes: 10, ...(over.bodyMap ? { bodyMap: over.bodyMap } : {}) },
          response: { code: over.code ?? 200, bodyBytes: 5 },
          httpVersion: 'HTTP11',
        },
      },
    },
  };
}

describe('toRow', () => {
  test('an MCP tools/call, an anonymous request, a non-JSON-RPC body', () => {
    assert.deepEqual(toRow(accessLog({ user: 'alice', bodyMap: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add' } } })), {
      time: '03:04:05.678', status: 'ALLOWED', user: 'alice', service: 'my-mcp', method: 'POST', path: '/mcp', code: 200, mcp: 'tools/call add',
    });
    const anon = toRow(accessLog({}));
    assert.equal(anon.user, '(anonymous)');
    assert.equal(anon.mcp, '');
    assert.equal(toRow(accessLog({ user: 'a', bodyMap: { hello: 'world' } })).mcp, '');
  });
});

describe('LogsView (ink)', () => {
  const rows: LogRow[] = [
    toRow(accessLog({ user: 'alice', bodyMap: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add' } } })),
    toRow(accessLog({ user: 'bob', status: 'DENIED', code: 403, bodyMap: { jsonrpc: '2.0', id: 2, method: 'tools/list' } })),
  ];

  test('a header, one line per row, a count', () => {
    const { lastFrame, unmount } = render(<LogsView rows={rows} />);
    const lines = lastFrame()!.split('\n');
    assert.match(lines[0], /^TIME\s+STATUS\s+CODE\s+USER\s+SERVICE\s+METHOD\s+PATH\s+MCP\s*$/);
    assert.match(lines[1], /^03:04:05\.678\s+ALLOWED\s+200\s+alice\s+my-mcp\s+POST\s+\/mcp\s+tools\/call add\s*$/);
    assert.match(lines[2], /^03:04:05\.678\s+DENIED\s+403\s+bob\s+my-mcp\s+POST\s+\/mcp\s+tools\/list\s*$/);
    assert.match(lines[3], /^2 request\(s\) — Ctrl-C to stop/);
    assert.equal(lines.length, 4);
    // Columns line up: every row's STATUS starts where the header's does.
    const col = lines[0].indexOf('STATUS');
    assert.equal(lines[1].indexOf('ALLOWED'), col);
    assert.equal(lines[2].indexOf('DENIED'), col);
    // The terminal view shows the same lines as `octeliumctl logs` prints without a terminal.
    assert.equal(lines[0].trimEnd(), logHeader());
    assert.equal(lines[1].trimEnd(), logLine(rows[0]));
    unmount();
  });

  test('keeps the newest `max` rows at the bottom and updates on rerender', () => {
    const many = Array.from({ length: 30 }, (_, i) => toRow(accessLog({ user: `user-${i}` })));
    const { lastFrame, rerender, unmount } = render(<LogsView rows={many.slice(0, 10)} max={5} />);
    let frame = lastFrame()!;
    assert.match(frame, /user-9\b/);
    assert.doesNotMatch(frame, /user-4\b/);
    assert.match(frame, /10 request\(s\)/);
    rerender(<LogsView rows={many} max={5} />);
    frame = lastFrame()!;
    const users = frame.split('\n').slice(1, -1).map((l) => /user-\d+/.exec(l)?.[0]);
    assert.deepEqual(users, ['user-25', 'user-26', 'user-27', 'user-28', 'user-29']);
    assert.match(frame, /30 request\(s\)/);
    unmount();
  });

  test('long values are truncated to their column, not wrapped', () => {
    const long = toRow(accessLog({ user: 'a-very-long-user-name-that-does-not-fit', service: 'svc', bodyMap: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x'.repeat(60) } } }));
    const { lastFrame, unmount } = render(<LogsView rows={[long]} />);
    const lines = lastFrame()!.split('\n');
    assert.equal(lines.length, 3, 'header, one row, count');
    assert.doesNotMatch(lines[1], /does-not-fit/);
    unmount();
  });
});
