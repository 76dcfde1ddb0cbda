import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { OcteliumError } from '@octelium-ts/shared';
import { ExtProcClientPool, type ExtProcResult } from '../src/plugins/extproc/index.js';
import { type Handler, type StreamLog, setHeader, startExtProcServer, wireHeaders } from './helpers/extproc-server.js';

const REQ_HEADERS = {
  ':method': 'POST',
  ':path': '/mcp',
  ':authority': 'mcp.example.com',
  ':scheme': 'https',
  'content-type': 'application/json',
  'x-remove-me': 'secret',
  'x-tenant': 'old',
  'x-trace': 'a',
  'x-keep': 'kept',
};

async function withServer(
  handler: Handler,
  fn: (address: string, streams: StreamLog[], pool: ExtProcClientPool) => Promise<void>,
  poolOptions?: ConstructorParameters<typeof ExtProcClientPool>[0],
) {
  const server = await startExtProcServer(handler);
  const pool = new ExtProcClientPool(poolOptions);
  try {
    await fn(server.address, server.streams, pool);
  } finally {
    pool.close();
    await server.stop();
  }
}

function isPluginFailed(match?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof OcteliumError, `expected OcteliumError, got ${String(e)}`);
    assert.equal(e.code, 'OCT_ERR_PLUGIN_FAILED');
    assert.equal(e.httpStatus, 500);
    if (match) assert.match(e.message, match);
    return true;
  };
}

function asContinue(r: ExtProcResult) {
  assert.equal(r.kind, 'continue');
  if (r.kind !== 'continue') throw new Error('unreachable');
  return r;
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(10);
  }
}

const toolsCall = (args: Record<string, unknown>) =>
  Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'add', arguments: args } }));

test('(a) request header mutation: add, overwrite, append, remove; routing/x-envoy/pseudo edits ignored', async () => {
  const handler: Handler = (req) => {
    if (req.request === 'request_headers') {
      return {
        request_headers: {
          response: {
            header_mutation: {
              set_headers: [
                setHeader('X-User-Id', 'usr-42'), // new header, mixed case key
                setHeader('x-tenant', 'acme'), // ExtProc default: overwrite
                setHeader('x-trace', 'b', { append: true }), // deprecated append flag
                setHeader('x-keep', 'nope', { append_action: 1 }), // ADD_IF_ABSENT on an existing header
                setHeader('x-absent', 'nope', { append_action: 3 }), // OVERWRITE_IF_EXISTS on a missing one
                { header: { key: 'x-legacy', value: 'from-value-field' } }, // old servers use `value`
                setHeader(':path', '/mcp/v2'),
                setHeader('host', 'evil.example.com'),
                setHeader(':authority', 'evil.example.com'),
                setHeader('x-envoy-original-path', '/x'),
              ],
              remove_headers: ['x-remove-me', ':method', 'host'],
            },
          },
        },
      };
    }
    if (req.request === 'response_headers') return { response_headers: {} };
    return undefined;
  };
  await withServer(handler, async (address, streams, pool) => {
    const ex = pool.open({ address });
    const r = asContinue(await ex.onRequest({ headers: { ...REQ_HEADERS, 'X-Upper': 'v' } }));
    assert.deepEqual(r.headers, {
      ':method': 'POST',
      ':path': '/mcp/v2',
      ':authority': 'mcp.example.com',
      ':scheme': 'https',
      'content-type': 'application/json',
      'x-tenant': 'acme',
      'x-trace': 'a, b',
      'x-keep': 'kept',
      'x-upper': 'v',
      'x-user-id': 'usr-42',
      'x-legacy': 'from-value-field',
    });
    assert.equal(r.headersChanged, true);
    assert.equal(r.bodyChanged, false);
    assert.equal(r.body, undefined);

    // What the server saw: one stream, Envoy-style request_headers with raw_value and pseudo-headers first.
    assert.equal(streams.length, 1);
    const first = streams[0].requests[0];
    assert.equal(first.request, 'request_headers');
    assert.equal(first.request_headers?.end_of_stream, true);
    // Sent on the first message only; both body modes NONE.
    assert.deepEqual(first.protocol_config, { request_body_mode: 0, response_body_mode: 0 });
    const sent = first.request_headers?.headers?.headers ?? [];
    assert.deepEqual(sent.slice(0, 4).map((h) => h.key), [':method', ':path', ':authority', ':scheme']);
    assert.ok(sent.every((h) => h.raw_value !== undefined && h.value === undefined), 'values travel in raw_value');
    assert.equal(wireHeaders(first)['x-upper'], 'v');

    const resp = asContinue(await ex.onResponse({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') }));
    assert.equal(resp.status, 200);
    assert.deepEqual(resp.headers, { 'content-type': 'application/json' });
    assert.equal(resp.headersChanged, false);
    assert.equal(resp.bodyChanged, false);
    assert.equal(streams.length, 1, 'one Process stream per HTTP request');
    const second = streams[0].requests[1];
    assert.equal(second.request, 'response_headers');
    assert.equal(wireHeaders(second)[':status'], '200');
    assert.equal(second.response_headers?.end_of_stream, false);
    assert.equal(second.protocol_config, undefined, 'protocol_config only on the first message');
    // After the response phase the client half-closes (not cancels), so the server can finish with OK.
    await until(() => streams[0].halfClosed, 500);
    await sleep(50);
    assert.equal(streams[0].cancelled, false);
  });
});

test('(b) BUFFERED request body: a tools/call argument is rewritten by the ExtProc server', async () => {
  const handler: Handler = (req) => {
    if (req.request === 'request_headers') return { request_headers: {} };
    if (req.request === 'request_body') {
      const msg = JSON.parse(Buffer.from(req.request_body?.body ?? []).toString('utf8'));
      if (msg.params.arguments.a < 0) msg.params.arguments.a = 0;
      return {
        request_body: {
          response: {
            header_mutation: { set_headers: [setHeader('x-extproc', 'clamped')] },
            body_mutation: { body: Buffer.from(JSON.stringify(msg)) },
          },
        },
      };
    }
    return undefined;
  };
  await withServer(handler, async (address, streams, pool) => {
    const ex = pool.open({ address, processingMode: { requestBodyMode: 'BUFFERED', responseHeaderMode: 'SKIP' } });
    const body = toolsCall({ a: -5, b: 2 });
    const r = asContinue(await ex.onRequest({ headers: { ...REQ_HEADERS, 'content-length': String(body.length) }, body }));
    assert.equal(r.bodyChanged, true);
    assert.equal(r.headersChanged, true);
    assert.deepEqual(JSON.parse(r.body!.toString()).params.arguments, { a: 0, b: 2 });
    assert.equal(r.headers['x-extproc'], 'clamped');
    assert.equal(r.headers['content-length'], undefined, 'content-length dropped with a new body, as Envoy does');

    const [h, b] = streams[0].requests;
    assert.equal(h.request, 'request_headers');
    assert.equal(h.request_headers?.end_of_stream, false, 'a body follows');
    assert.equal(h.protocol_config?.request_body_mode, 2, 'BUFFERED announced');
    assert.equal(b.request, 'request_body');
    assert.equal(b.request_body?.end_of_stream, true);
    assert.ok(Buffer.from(b.request_body!.body!).equals(body));

    // Response headers are SKIPped and bodies NONE: nothing more goes to the server.
    const resp = asContinue(await ex.onResponse({ status: 200, headers: {}, body: Buffer.from('ok') }));
    assert.equal(resp.bodyChanged, false);
    assert.equal(resp.body?.toString(), 'ok');
    assert.equal(streams[0].requests.length, 2);
  });
});

test('(c) immediate 403 with a JSON body stops the request; nothing more is sent', async () => {
  const denial = { jsonrpc: '2.0', id: 7, error: { code: -32001, message: 'tool not allowed' } };
  const handler: Handler = () => ({
    immediate_response: {
      status: { code: 403 },
      headers: { set_headers: [setHeader('content-type', 'application/json'), setHeader('x-denied-by', 'extproc')] },
      body: Buffer.from(JSON.stringify(denial)),
      details: 'denied_by_extproc',
    },
  });
  await withServer(handler, async (address, streams, pool) => {
    const ex = pool.open({ address, processingMode: { requestBodyMode: 'BUFFERED' } });
    const r = await ex.onRequest({ headers: REQ_HEADERS, body: toolsCall({ a: 1, b: 2 }) });
    assert.equal(r.kind, 'immediate');
    if (r.kind !== 'immediate') return;
    assert.equal(r.status, 403);
    assert.deepEqual(r.headers, { 'content-type': 'application/json', 'x-denied-by': 'extproc' });
    assert.deepEqual(JSON.parse(r.body.toString()), denial);
    assert.equal(r.details, 'denied_by_extproc');
    assert.equal(streams[0].requests.length, 1, 'body not sent after an immediate response');
    const resp = asContinue(await ex.onResponse({ status: 500, headers: { a: 'b' } }));
    assert.equal(resp.status, 500);
    assert.equal(resp.headersChanged, false);
    assert.equal(streams[0].requests.length, 1);
  });
});

test('immediate response without status defaults to 200 with text/plain, like Envoy', async () => {
  await withServer(
    () => ({ immediate_response: { body: Buffer.from('bye') } }),
    async (address, _streams, pool) => {
      const r = await pool.open({ address }).onRequest({ headers: REQ_HEADERS });
      assert.deepEqual(r, { kind: 'immediate', status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.from('bye') });
    },
  );
});

test('(d) response headers and BUFFERED response body are mutated', async () => {
  const handler: Handler = (req) => {
    if (req.request === 'response_headers') {
      return {
        response_headers: {
          response: {
            header_mutation: {
              set_headers: [setHeader('x-resp-scanned', 'yes'), setHeader(':status', '203')],
              remove_headers: ['server'],
            },
          },
        },
      };
    }
    if (req.request === 'response_body') {
      const msg = JSON.parse(Buffer.from(req.response_body?.body ?? []).toString());
      msg.result.content[0].text = '[redacted]';
      return { response_body: { response: { body_mutation: { body: Buffer.from(JSON.stringify(msg)) } } } };
    }
    return undefined;
  };
  await withServer(handler, async (address, streams, pool) => {
    const ex = pool.open({ address, processingMode: { requestHeaderMode: 'SKIP', responseBodyMode: 'BUFFERED' } });
    const req = asContinue(await ex.onRequest({ headers: REQ_HEADERS, body: toolsCall({}) }));
    assert.equal(req.headersChanged, false);
    assert.equal(streams.length, 0, 'nothing to send → no stream opened');

    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'ssn 123-45-6789' }] } }));
    const r = asContinue(
      await ex.onResponse({ status: 200, headers: { 'content-type': 'application/json', 'content-length': String(body.length), server: 'upstream' }, body }),
    );
    assert.equal(r.status, 203);
    assert.deepEqual(r.headers, { 'content-type': 'application/json', 'x-resp-scanned': 'yes' });
    assert.equal(JSON.parse(r.body!.toString()).result.content[0].text, '[redacted]');
    assert.equal(r.bodyChanged, true);
    assert.equal(r.headersChanged, true);
    assert.deepEqual(streams[0].requests.map((q) => q.request), ['response_headers', 'response_body']);
    assert.equal(streams[0].requests[0].protocol_config?.response_body_mode, 2);
  });
});

test('a :status-only response mutation is reported as status, not as a header change; a bad :status fails closed', async () => {
  await withServer(
    () => ({ response_headers: { response: { header_mutation: { set_headers: [setHeader(':status', '404')] } } } }),
    async (address, _s, pool) => {
      const r = asContinue(await pool.open({ address, processingMode: { requestHeaderMode: 'SKIP' } }).onResponse({ status: 200, headers: { a: '1' } }));
      assert.equal(r.status, 404);
      assert.equal(r.headersChanged, false);
      assert.deepEqual(r.headers, { a: '1' });
    },
  );
  await withServer(
    () => ({ response_headers: { response: { header_mutation: { set_headers: [setHeader(':status', 'abc')] } } } }),
    async (address, _s, pool) => {
      await assert.rejects(pool.open({ address, processingMode: { requestHeaderMode: 'SKIP' } }).onResponse({ status: 200, headers: {} }), isPluginFailed(/invalid :status/));
    },
  );
});

test('CONTINUE_AND_REPLACE on headers replaces the body and skips sending it', async () => {
  const handler: Handler = () => ({
    request_headers: { response: { status: 1, header_mutation: { set_headers: [setHeader(':method', 'PUT')] }, body_mutation: { body: Buffer.from('new') } } },
  });
  await withServer(handler, async (address, streams, pool) => {
    const ex = pool.open({ address, processingMode: { requestBodyMode: 'BUFFERED', responseHeaderMode: 'SKIP' } });
    const r = asContinue(await ex.onRequest({ headers: { ...REQ_HEADERS, 'content-length': '3' }, body: Buffer.from('old') }));
    assert.equal(r.body?.toString(), 'new');
    assert.equal(r.headers[':method'], 'PUT', ':method may change only when replacing');
    assert.equal(r.headers['content-length'], undefined);
    assert.equal(streams[0].requests.length, 1);
  });
});

test('clear_body empties the body', async () => {
  const handler: Handler = (req) => (req.request === 'request_body' ? { request_body: { response: { body_mutation: { clear_body: true } } } } : { request_headers: {} });
  await withServer(handler, async (address, _s, pool) => {
    const r = asContinue(await pool.open({ address, processingMode: { requestBodyMode: 'BUFFERED' } }).onRequest({ headers: REQ_HEADERS, body: Buffer.from('x') }));
    assert.equal(r.body?.length, 0);
    assert.equal(r.bodyChanged, true);
  });
});

test('server down → PLUGIN_FAILED quickly (not after the message timeout)', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const pool = new ExtProcClientPool();
  try {
    const start = Date.now();
    await assert.rejects(pool.open({ address: `127.0.0.1:${port}`, messageTimeout: { seconds: 5 } }).onRequest({ headers: REQ_HEADERS }), isPluginFailed(/UNAVAILABLE/));
    assert.ok(Date.now() - start < 1500, `took ${Date.now() - start} ms`);
  } finally {
    pool.close();
  }
});

test('server too slow → PLUGIN_FAILED after messageTimeout, and the stream is cancelled', async () => {
  const handler: Handler = async (req) => {
    await sleep(1000);
    return req.request === 'request_headers' ? { request_headers: {} } : undefined;
  };
  await withServer(handler, async (address, streams, pool) => {
    const ex = pool.open({ address, messageTimeout: { milliseconds: 150 } });
    const start = Date.now();
    await assert.rejects(ex.onRequest({ headers: REQ_HEADERS }), isPluginFailed(/messageTimeout 150 ms/));
    const took = Date.now() - start;
    assert.ok(took >= 140 && took < 800, `took ${took} ms`);
    await until(() => streams[0]?.cancelled === true);
    // The exchange stays failed: the gateway must not carry on with a half-processed request.
    await assert.rejects(ex.onResponse({ status: 200, headers: {} }), isPluginFailed());
  });
});

test('default messageTimeout is 200 ms', async () => {
  await withServer(
    () => undefined,
    async (address, _s, pool) => {
      const start = Date.now();
      await assert.rejects(pool.open({ address }).onRequest({ headers: REQ_HEADERS }), isPluginFailed(/messageTimeout 200 ms/));
      const took = Date.now() - start;
      assert.ok(took >= 190 && took < 900, `took ${took} ms`);
    },
  );
});

test('gRPC error status, a close while awaiting, a spurious reply and a bad mutation all fail closed', async () => {
  const cases: Array<[Handler, RegExp]> = [
    [() => ({ error: grpc.status.PERMISSION_DENIED, details: 'nope' }), /PERMISSION_DENIED: nope/],
    [() => ({ close: true }), /closed the stream/],
    [() => ({ response_headers: {} }), /spurious reply response_headers to request_headers/],
    [() => ({ request_headers: { response: { header_mutation: { set_headers: [setHeader('x-bad', 'a\r\nb')] } } } }), /invalid header value/],
    [() => ({ request_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-both', value: 'a', raw_value: Buffer.from('b') } }] } } } }), /only one of value or raw_value/],
  ];
  for (const [handler, match] of cases) {
    await withServer(handler, async (address, _s, pool) => {
      await assert.rejects(pool.open({ address, messageTimeout: { seconds: 5 } }).onRequest({ headers: REQ_HEADERS }), isPluginFailed(match));
    });
  }
});

test('a stream closed cleanly between phases lets the response continue unprocessed (Envoy semantics)', async () => {
  await withServer(
    (req) => (req.request === 'request_headers' ? [{ request_headers: { response: { header_mutation: { set_headers: [setHeader('x-a', '1')] } } } }, { close: true }] : { response_headers: {} }),
    async (address, streams, pool) => {
      const ex = pool.open({ address });
      const r = asContinue(await ex.onRequest({ headers: REQ_HEADERS }));
      assert.equal(r.headers['x-a'], '1');
      await sleep(100); // let the OK status reach the client
      const resp = asContinue(await ex.onResponse({ status: 200, headers: { server: 'up' } }));
      assert.deepEqual(resp.headers, { server: 'up' });
      assert.equal(resp.headersChanged, false);
      assert.equal(streams[0].requests.length, 1, 'response_headers not sent on a finished stream');
    },
  );
});

test('two exchanges to one address share one channel and connection', async () => {
  await withServer(
    (req) => (req.request === 'request_headers' ? { request_headers: {} } : { response_headers: {} }),
    async (address, streams, pool) => {
      const a = pool.open({ address });
      const b = pool.open({ address });
      await Promise.all([a.onRequest({ headers: REQ_HEADERS }), b.onRequest({ headers: REQ_HEADERS })]);
      assert.equal(pool.size, 1);
      assert.equal(streams.length, 2, 'still one stream per exchange');
      assert.equal(streams[0].peer, streams[1].peer, 'same client socket');
      a.close();
      b.close();
    },
    // A local subchannel pool per channel, so sharing a connection really means sharing the channel.
    { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } },
  );
});

test('AbortSignal ends a pending exchange with PLUGIN_FAILED before the timeout', async () => {
  await withServer(
    () => undefined,
    async (address, streams, pool) => {
      const ac = new AbortController();
      const ex = pool.open({ address, messageTimeout: { seconds: 5 } }, ac.signal);
      const start = Date.now();
      const p = ex.onRequest({ headers: REQ_HEADERS });
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(p, isPluginFailed(/aborted/));
      assert.ok(Date.now() - start < 1000);
      await until(() => streams[0]?.cancelled === true);
    },
  );
});

test('SKIP/NONE everywhere never opens a stream', async () => {
  await withServer(
    () => undefined,
    async (address, streams, pool) => {
      const ex = pool.open({ address, processingMode: { requestHeaderMode: 'SKIP', responseHeaderMode: 'SKIP' } });
      const r = asContinue(await ex.onRequest({ headers: REQ_HEADERS, body: Buffer.from('b') }));
      assert.deepEqual(r.headers, REQ_HEADERS);
      assert.equal(r.body?.toString(), 'b');
      asContinue(await ex.onResponse({ status: 204, headers: {} }));
      ex.close();
      assert.equal(streams.length, 0);
      assert.equal(pool.size, 0);
    },
  );
});
