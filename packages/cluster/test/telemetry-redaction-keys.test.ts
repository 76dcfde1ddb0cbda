import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessLog } from '@octelium-ts/shared';
import { openDatabase } from '../src/store/db.js';
import { ResourceStore } from '../src/store/resource-store.js';
import { Redactor } from '../src/telemetry/redaction.js';
import { REDACTED } from '../src/telemetry/json-path.js';

function logWith(parts: { bodyMap?: unknown; responseBodyMap?: unknown; details?: Record<string, unknown>; message?: string }): AccessLog {
  return {
    apiVersion: 'core/v1', kind: 'AccessLog', metadata: { id: 'x', createdAt: '2026-12-02T00:00:00.000Z' },
    entry: {
      common: {
        startedAt: '2026-12-02T00:00:00.000Z', endedAt: '2026-12-02T00:00:00.001Z', status: 'ALLOWED', mode: 'HTTP',
        reason: { type: 'POLICY_MATCH', ...(parts.details ? { details: parts.details } : {}) }, isPublic: true, isAnonymous: false,
        ...(parts.message ? { error: { code: 'OCT_ERR_X', message: parts.message } } : {}),
      },
      info: { http: { request: { path: '/mcp', uri: '/mcp', method: 'POST', bodyBytes: 1, bodyMap: parts.bodyMap }, response: { code: 200, bodyBytes: 1, bodyMap: parts.responseBodyMap }, httpVersion: 'HTTP11' } },
    },
  };
}

// Keys named like a credential header are found where a client or upstream chooses keys: bodies (any depth, any
// case, inside arrays) and a decision's details. Nothing else of the log is touched when none occurs.
test('credential-named keys in bodies and decision details are redacted; a log without one is returned as is', () => {
  const store = new ResourceStore(openDatabase(':memory:'));
  const r = new Redactor(store, { paths: [], headers: ['X-Api-Key'] });
  const clean = logWith({ bodyMap: { params: { note: 'the word authorization is fine as a value', list: [{ a: 1 }] } }, message: '"authorization": in a message is text' });
  assert.equal(r.redact(clean), clean, 'nothing to scrub: the same object');

  const cases: Array<[string, AccessLog, (l: AccessLog) => unknown]> = [
    ['request body, nested in an array, mixed case', logWith({ bodyMap: { params: { list: [{ AUTHORIZATION: 'abcd-1234' }] } } }), (l) => (l.entry.info.http.request.bodyMap as { params: { list: Array<{ AUTHORIZATION: string }> } }).params.list[0].AUTHORIZATION],
    ['response body, a configured header name', logWith({ responseBodyMap: { result: { 'x-api-key': 'k-123456' } } }), (l) => (l.entry.info.http.response.bodyMap as { result: Record<string, string> }).result['x-api-key']],
    ['a decision detail', logWith({ details: { cookie: 'sid=abcdef' } }), (l) => l.entry.common.reason.details?.cookie],
  ];
  for (const [what, log, pick] of cases) {
    const out = r.redact(log);
    assert.equal(pick(out), REDACTED, what);
    assert.notEqual(pick(log), REDACTED, `${what}: the input log is not changed`);
  }
  r.close();
});
