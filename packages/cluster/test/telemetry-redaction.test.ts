import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import type { AccessLog } from '@octelium-ts/shared';
import { startOtlpReceiver, type OtlpReceiver } from '../src/telemetry/otlp-receiver.js';
import { REDACTED, redactPaths } from '../src/telemetry/json-path.js';
import { SseJsonRpcCollector } from '../src/telemetry/response-capture.js';
import { adminClient, oauth2Token, service, spawnCluster, tempDir, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { startTelemetryCluster, waitUntil } from './telemetry-support.js';

let receiver: OtlpReceiver;
let tc: TestCluster;
let echo: TestUpstream;
let token: string;

// Everything below must never reach a stored, streamed or exported AccessLog.
const API_KEY = 'key-abc-123456789';
const PASSWORD = 'p4ssw0rd-do-not-log';
const SVC_TOKEN = 'svc-level-token-0042';
const SECRET_VALUE = 'hunter2-secret-value-xyz';
const ROTATED_SECRET = 'rotated-secret-value-777';
const LATE_SECRET = 'late-secret-value-31337';
const BODY_AUTH = 'Bearer body-carried-credential-99';

before(async () => {
  receiver = await startOtlpReceiver();
  tc = await startTelemetryCluster({
    otlp: { endpoint: receiver.url, scheduledDelayMillis: 20 },
    redact: { paths: ['params.arguments.password'], headers: ['X-Api-Key'] },
  });
  // Echoes the request inside a JSON-RPC result, and the Secret-derived credential it received: what an
  // upstream that reflects its input would do. Response capture is on, so all of it reaches the AccessLog.
  echo = await startUpstream((req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { echo: JSON.parse(body || 'null'), sawAuth: req.headers.authorization ?? null } }));
  });
  await tc.api.apply({
    resources: [
      user('alice'),
      { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'upstream-key' }, spec: {}, data: { value: SECRET_VALUE } },
      service('vault', {
        config: {
          upstream: { url: echo.url },
          http: {
            enableRequestBuffering: true, body: { mode: 'JSON' },
            auth: { bearer: { fromSecret: 'upstream-key' } },
            visibility: { captureResponseBody: true, redactPaths: ['params.arguments.apiToken'] },
          },
        },
      }),
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await echo.close();
  await tc.close();
  await receiver.close();
});

function call(args: Record<string, unknown>, extraHeaders: Record<string, string> = {}, query = '') {
  return request(`${tc.cluster.url}/svc/vault/mcp${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'x-api-key': API_KEY, 'content-type': 'application/json', ...extraHeaders },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'login', arguments: args } }),
  });
}

describe('redaction of AccessLogs (stored, streamed, exported)', () => {
  test('header tokens, configured paths, Secret values and credential-named keys never appear', async () => {
    const streamed: AccessLog[] = [];
    const follow = new AbortController();
    const following = tc.api.followAccessLogs({ service: 'vault' }, (l) => streamed.push(l), follow.signal);
    await new Promise((r) => setTimeout(r, 100)); // the SSE subscription is in place

    const r = await call(
      { user: 'bob', password: PASSWORD, apiToken: SVC_TOKEN, note: `mentions ${SECRET_VALUE} and ${API_KEY}`, headers: { Authorization: BODY_AUTH, Cookie: 'sid=cookie-value-123' } },
      {},
      `?access_token=${token}`,
    );
    const answer = (await r.body.json()) as { result: { sawAuth: string } };
    assert.equal(r.statusCode, 200);
    assert.equal(answer.result.sawAuth, `Bearer ${SECRET_VALUE}`, 'the upstream did get the Secret (and echoed it back)');

    await waitUntil('the exported log', () => receiver.logs.some((l) => l.attributes.service === 'vault'));
    await waitUntil('the streamed log', () => streamed.length > 0);
    follow.abort();
    await following;

    const stored = tc.cluster.accessLogs.query({ service: 'vault' }, 10);
    assert.equal(stored.length, 1);
    const everything = [...receiver.raw.map((p) => p.text), JSON.stringify(stored), JSON.stringify(streamed)];
    for (const secret of [token, API_KEY, PASSWORD, SVC_TOKEN, SECRET_VALUE, BODY_AUTH, 'body-carried-credential-99', 'cookie-value-123']) {
      for (const text of everything) assert.equal(text.includes(secret), false, `"${secret.slice(0, 12)}…" leaked`);
    }

    // What is left is still a useful audit record.
    const log = stored[0];
    const args = (log.entry.info.http.request.bodyMap as { params: { arguments: Record<string, unknown> } }).params.arguments;
    assert.equal(args.user, 'bob', 'unrelated fields stay');
    assert.equal(args.password, REDACTED);
    assert.equal(args.apiToken, REDACTED, 'the Service-level path applies');
    assert.deepEqual(args.headers, { Authorization: REDACTED, Cookie: REDACTED });
    assert.equal(args.note, `mentions ${REDACTED} and ${REDACTED}`);
    assert.equal(log.entry.info.http.request.uri, `/mcp?access_token=${REDACTED}`);
    const echoed = log.entry.info.http.response.bodyMap as { result: { sawAuth: string; echo: { params: { arguments: Record<string, unknown> } } } };
    assert.match(echoed.result.sawAuth, /^(Bearer )?\[REDACTED\]$/, 'the Secret is scrubbed from the captured response too');
    assert.equal(echoed.result.echo.params.arguments.password, REDACTED, 'a redacted request field echoed in the response is scrubbed there too');
    assert.equal(echoed.result.echo.params.arguments.user, 'bob');
    assert.deepEqual(streamed.map((l) => l.metadata.id), [log.metadata.id]);
  });

  test('a Secret created or rotated later is redacted from the next request on', async () => {
    await tc.api.apply({
      resources: [
        { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'upstream-key' }, spec: {}, data: { value: ROTATED_SECRET } },
        // Used by nothing: only the store's change feed can tell the redactor about it.
        { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'late' }, spec: {}, data: { value: LATE_SECRET } },
      ],
    });
    const r = await call({ user: 'carol', note: `pasted ${LATE_SECRET} here` });
    assert.equal(((await r.body.json()) as { result: { sawAuth: string } }).result.sawAuth, `Bearer ${ROTATED_SECRET}`);
    const logs = tc.cluster.accessLogs.query({ service: 'vault' }, 10);
    const last = logs.at(-1)!;
    const args = (last.entry.info.http.request.bodyMap as { params: { arguments: { user: string; note: string } } }).params.arguments;
    assert.equal(args.user, 'carol');
    assert.equal(args.note, `pasted ${REDACTED} here`);
    for (const secret of [ROTATED_SECRET, LATE_SECRET]) assert.equal(JSON.stringify(last).includes(secret), false);
    await waitUntil('the exported log', () => receiver.logs.some((l) => String(l.body).includes('carol')));
    assert.equal(receiver.raw.some((p) => p.text.includes(LATE_SECRET) || p.text.includes(ROTATED_SECRET)), false);
    assert.match(JSON.stringify(last.entry.info.http.response.bodyMap), /"sawAuth":"(Bearer )?\[REDACTED\]"/);
  });
});

describe('flags: octelium-cluster start --otlp-endpoint --redact-path --redact-header --capture-response-body', () => {
  test('a cluster process exports redacted logs with captured responses', async () => {
    const dataDir = tempDir();
    const cp = await spawnCluster(dataDir, ['--otlp-endpoint', receiver.url, '--redact-path', 'params.arguments.pin', '--redact-header', 'x-pin', '--capture-response-body']);
    try {
      const api = await adminClient(cp.info.domain, dataDir);
      await api.apply({ resources: [service('echo', { isAnonymous: true, config: { upstream: { url: echo.url }, http: { enableRequestBuffering: true, body: { mode: 'JSON' } } } })] });
      const r = await request(`${cp.info.url}/svc/echo/`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-pin': 'header-pin-5555' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'unlock', arguments: { pin: '98765', also: 'header-pin-5555' } } }),
      });
      await r.body.text();
      const rec = await waitUntil('the exported log from the process', () => receiver.logs.find((l) => l.attributes.service === 'echo' && l.attributes['mcp.tool'] === 'unlock'), 15_000);
      const log = JSON.parse(rec.body as string) as AccessLog;
      assert.deepEqual((log.entry.info.http.request.bodyMap as { params: { arguments: unknown } }).params.arguments, { pin: REDACTED, also: REDACTED });
      assert.equal((log.entry.info.http.response.bodyMap as { result: { echo: { params: { name: string } } } }).result.echo.params.name, 'unlock', 'response captured by default');
      assert.equal(receiver.raw.some((p) => p.text.includes('98765') || p.text.includes('header-pin-5555')), false);
    } finally {
      await cp.stop();
    }
  });
});

describe('units', () => {
  test('redactPaths: keys, *, **, array indexes, arrays of messages; input untouched', () => {
    const input = { params: { arguments: { password: 'a', keep: 1 }, list: [{ token: 't1' }, { token: 't2' }] }, deep: { x: { token: 't3' } } };
    const frozen = JSON.stringify(input);
    assert.deepEqual(redactPaths(input, ['params.arguments.password']), { ...input, params: { ...input.params, arguments: { password: REDACTED, keep: 1 } } });
    assert.deepEqual((redactPaths(input, ['params.list.*.token']) as typeof input).params.list, [{ token: REDACTED }, { token: REDACTED }]);
    assert.deepEqual((redactPaths(input, ['params.list.1.token']) as typeof input).params.list, [{ token: 't1' }, { token: REDACTED }]);
    const all = redactPaths(input, ['**.token']) as typeof input;
    assert.deepEqual([all.params.list[0].token, all.params.list[1].token, all.deep.x.token], [REDACTED, REDACTED, REDACTED]);
    assert.deepEqual(redactPaths([{ params: { arguments: { password: 'b' } } }], ['params.arguments.password']), [{ params: { arguments: { password: REDACTED } } }], 'a JSON-RPC batch');
    assert.equal(redactPaths(input, ['no.such.path']), input, 'same object when nothing matched');
    assert.equal(JSON.stringify(input), frozen);
  });

  test('SSE collector: split events, CRLF, batches, non-JSON-RPC events, size cap', () => {
    const c = new SseJsonRpcCollector(1000);
    const ev = (o: unknown) => `event: message\r\ndata: ${JSON.stringify(o)}\r\n\r\n`;
    const stream = ev({ jsonrpc: '2.0', method: 'notifications/progress', params: {} }) + ev({ jsonrpc: '2.0', id: 3, result: { ok: 1 } }) + ': comment\n\n' + ev([{ jsonrpc: '2.0', id: 4, error: { code: -1, message: 'no' } }]);
    for (let i = 0; i < stream.length; i += 7) c.push(stream.slice(i, i + 7)); // arbitrary chunk boundaries
    assert.deepEqual(c.messages, [{ jsonrpc: '2.0', id: 3, result: { ok: 1 } }, { jsonrpc: '2.0', id: 4, error: { code: -1, message: 'no' } }]);
    const small = new SseJsonRpcCollector(50);
    small.push(ev({ jsonrpc: '2.0', id: 1, result: { blob: 'x'.repeat(100) } }) + ev({ jsonrpc: '2.0', id: 2, result: 1 }));
    assert.deepEqual(small.messages, [{ jsonrpc: '2.0', id: 2, result: 1 }], 'the oversized event is skipped, the next one kept');
  });
});
