/**
 * The hostile-input suite (issue 18, docs/security.md): malformed and abusive requests sent byte for byte over raw
 * sockets to a real cluster. After each one: the exact status, and the process still answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { service, startTestCluster, type TestCluster } from './helpers/testing.js';
import { rawGet, rawRequest, type RawResponse } from './helpers/raw-http.js';

interface Seen { url: string; headers: IncomingMessage['headers']; bodyBytes: number }

let tc: TestCluster;
let port: number;
let upstream: Server;
const seen: Seen[] = [];

/** An upstream that records the raw request target, headers and body size it received, and echoes the body back. */
function startRecordingUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ url: req.url ?? '', headers: req.headers, bodyBytes: body.length });
      res.writeHead(200, { 'content-type': String(req.headers['content-type'] ?? 'text/plain') });
      res.end(body.length ? body : `seen ${req.url}`);
    });
    req.on('error', () => undefined);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

function lastSeen(): Seen {
  const s = seen.at(-1);
  assert.ok(s, 'the upstream saw no request');
  return s;
}

async function assertAlive(): Promise<void> {
  const r = await rawGet(port, '/healthz');
  assert.equal(r.status, 200, 'the cluster no longer answers /healthz');
}

function errorCode(r: RawResponse): string | undefined {
  try {
    const j = JSON.parse(r.body) as { error?: { code?: string | number; data?: { code?: string } } };
    // JSON-RPC error bodies carry the numeric JSON-RPC code, and ours in data.code.
    return typeof j.error?.code === 'string' ? j.error.code : j.error?.data?.code;
  } catch {
    return undefined;
  }
}

before(async () => {
  upstream = await startRecordingUpstream();
  const up = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  tc = await startTestCluster({
    options: { limits: { headersTimeoutMs: 600, requestTimeoutMs: 1_500, maxStreamedBodyBytes: 256 * 1024, maxHeaderCount: 50 } },
  });
  port = tc.cluster.port;
  await tc.api.apply({
    resources: [
      service('echo', { isAnonymous: true, config: { upstream: { url: up } } }),
      service('json', {
        isAnonymous: true,
        config: { upstream: { url: up }, http: { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 64 * 1024 } } },
      }),
    ],
  });
});

after(async () => {
  await tc.close();
  upstream.close();
});

describe('request targets', () => {
  const rejected: Array<[string, string, number]> = [
    ['GET', '//', 400],
    ['GET', '//evil.example/x', 400],
    ['GET', '/svc/%zz/', 400],
    ['GET', '/svc/echo/%zz', 400],
    ['GET', '/svc/echo/%', 400],
    ['GET', '/svc/echo/a%00b', 400],
    ['GET', '/svc/a%2fb/', 400],
    ['GET', '/svc/a%5Cb/', 400],
    ['GET', '/svc/..%2fapi/v1/services', 400],
    ['GET', '/svc/../api/v1/services', 400],
    ['GET', '/svc/echo/..', 400],
    ['GET', '/svc/echo/a/../../api/v1/services', 400],
    ['GET', '/svc/echo/%2e%2e/api/v1/services', 400],
    ['GET', '/svc/echo/.%2E/x', 400],
    ['GET', '/svc/echo/a\\..\\admin', 400],
    ['GET', '/api/../../etc/passwd', 400],
    ['GET', '/..', 400],
    ['GET', '*', 400],
    ['GET', 'http://evil.example/svc/echo/', 400],
    ['GET', 'relative/path', 400],
    ['GET', '/api/v1/services/%zz', 400],
    ['GET', '/.well-known/oauth-protected-resource/svc/%zz', 400],
  ];
  for (const [method, target, status] of rejected) {
    test(`${method} ${target} → ${status}`, async () => {
      const r = await rawGet(port, target, [], method);
      assert.equal(r.status, status, r.raw.slice(0, 300));
      // Node's parser refuses some targets itself (a plain 400 of the listener's parser-error handler).
      assert.match(errorCode(r) ?? '', /^OCT_ERR_(INVALID_REQUEST_TARGET|INVALID_ARGUMENT)$/);
      await assertAlive();
    });
  }

  test('OPTIONS * is answered by the cluster', async () => {
    const r = await rawGet(port, '*', [], 'OPTIONS');
    assert.equal(r.status, 204);
    await assertAlive();
  });

  const normalised: Array<[string, string]> = [
    ['/svc/echo/a/%2e%2e/b', '/b'],
    ['/svc/echo/a/./b/', '/a/b/'],
    ['/svc/echo//a///b', '/a/b'],
    ['/svc/echo/a/b/..', '/a/'],
    ['/svc/echo/a/%2E/b?x=1', '/a/b?x=1'],
    ['/x/../svc/echo/y', '/y'],
    ['/svc/echo?q=1', '/?q=1'],
    ['/svc/echo', '/'],
  ];
  for (const [target, upstreamSees] of normalised) {
    test(`${target} reaches the upstream as ${upstreamSees} (Envoy normalize_path + merge_slashes, before routing)`, async () => {
      const r = await rawGet(port, target);
      assert.equal(r.status, 200, r.raw.slice(0, 300));
      assert.equal(lastSeen().url, upstreamSees);
    });
  }

  test('absolute-form for our own host is served like origin-form', async () => {
    const r = await rawGet(port, `http://localhost:${port}/svc/echo/abs`);
    assert.equal(r.status, 200, r.raw.slice(0, 300));
    assert.equal(lastSeen().url, '/abs');
  });

  test('the policy and the AccessLog see the normalised path', async () => {
    await rawGet(port, '/svc/echo/p/%2e%2e/q/./r');
    const deadline = Date.now() + 3000;
    for (;;) {
      const logs = tc.cluster.accessLogs.query({ service: 'echo' }, 20);
      const log = logs.find((l) => l.entry.info.http.request.path.startsWith('/q'));
      if (log) {
        assert.equal(log.entry.info.http.request.path, '/q/r');
        break;
      }
      assert.ok(Date.now() < deadline, 'no AccessLog for the normalised path');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

describe('header limits and framing', () => {
  test('URL longer than 8 KiB → 414', async () => {
    const r = await rawGet(port, '/svc/echo/' + 'a'.repeat(9000));
    assert.equal(r.status, 414);
    await assertAlive();
  });

  test('more header fields than the limit → 431', async () => {
    const r = await rawGet(port, '/svc/echo/', Array.from({ length: 60 }, (_, i) => `x-h${i}: v`));
    assert.equal(r.status, 431);
    await assertAlive();
  });

  test('a header block over 16 KiB → 431', async () => {
    const r = await rawGet(port, '/svc/echo/', [`x-big: ${'b'.repeat(20_000)}`]);
    assert.equal(r.status, 431);
    await assertAlive();
  });

  const framing: Array<[string, string]> = [
    ['Transfer-Encoding and Content-Length together (request smuggling)', 'POST /svc/echo/ HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n'],
    ['two different Content-Length values', 'POST /svc/echo/ HTTP/1.1\r\nhost: localhost\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd'],
    ['obs-fold header continuation', 'GET /svc/echo/ HTTP/1.1\r\nhost: localhost\r\nx-a: one\r\n two\r\n\r\n'],
    ['a bad chunk size', 'POST /svc/echo/ HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['a space before the colon', 'GET /svc/echo/ HTTP/1.1\r\nhost: localhost\r\nx-a : v\r\n\r\n'],
    ['a control character in the target', 'GET /svc/echo/\x01 HTTP/1.1\r\nhost: localhost\r\n\r\n'],
    ['garbage instead of a request line', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n'],
  ];
  for (const [name, bytes] of framing) {
    test(`${name} → 400, never forwarded`, async () => {
      const before = seen.length;
      const r = await rawRequest(port, bytes);
      assert.equal(r.status, 400, r.raw.slice(0, 300));
      assert.equal(seen.length, before, 'the upstream received the request');
      await assertAlive();
    });
  }
});

/** Sends `start`, then `more` every `everyMs` (a slowloris client) until the cluster closes; returns what it answered. */
async function dribble(start: string, more: string, everyMs: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.write(start);
  const interval = setInterval(() => socket.writable && socket.write(more), everyMs);
  try {
    return await new Promise<string>((resolve) => {
      let out = '';
      socket.on('data', (d) => (out += d));
      socket.on('close', () => resolve(out));
      socket.on('error', () => resolve(out));
    });
  } finally {
    clearInterval(interval);
  }
}

describe('slow and large bodies', () => {
  test('headers that never finish (slowloris) → 408 and the connection is closed', async () => {
    const answer = await dribble('GET /svc/echo/ HTTP/1.1\r\nhost: localhost\r\nx-slow: 1\r\n', 'x-more: 1\r\n', 200);
    assert.match(answer, /^HTTP\/1\.1 408/);
    await assertAlive();
  });

  test('a body that dribbles in past the request timeout → 408', async () => {
    const answer = await dribble('POST /svc/echo/ HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000\r\n\r\n', 'a', 100);
    // Node answers 408 when nothing was sent yet; once the proxy has started the response it can only cut it.
    assert.ok(answer === '' || /^HTTP\/1\.1 (408|502)/.test(answer), answer.slice(0, 200));
    await assertAlive();
  });

  test('a chunked body past the streamed-body cap of a non-buffering Service → 413', async () => {
    const chunk = 'a'.repeat(64 * 1024);
    const chunks = Array.from({ length: 8 }, () => `${(chunk.length).toString(16)}\r\n${chunk}\r\n`).join('');
    const r = await rawRequest(port, `POST /svc/echo/ HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${chunks}0\r\n\r\n`);
    assert.ok(r.status === 413 || r.status === 0, r.raw.slice(0, 300));
    assert.ok(!seen.some((s) => s.bodyBytes > 256 * 1024), 'more than the cap reached the upstream');
    await assertAlive();
  });

  test('a declared Content-Length past the cap → 413 before anything is forwarded', async () => {
    const before = seen.length;
    const r = await rawRequest(port, `POST /svc/echo/ HTTP/1.1\r\nhost: localhost\r\ncontent-length: ${1024 * 1024}\r\nconnection: close\r\n\r\nabc`);
    assert.equal(r.status, 413);
    assert.equal(seen.length, before);
    await assertAlive();
  });

  test('a chunked body past maxRequestSize of a buffering Service → 413', async () => {
    const chunk = 'a'.repeat(40 * 1024);
    const r = await rawRequest(port, `POST /svc/json/ HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`);
    assert.equal(r.status, 413);
    await assertAlive();
  });
});

describe('JSON bodies', () => {
  function post(path: string, body: string | Buffer): Promise<RawResponse> {
    const b = typeof body === 'string' ? Buffer.from(body) : body;
    return rawRequest(port, Buffer.concat([
      Buffer.from(`POST ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${b.length}\r\nconnection: close\r\n\r\n`),
      b,
    ]));
  }

  test('8 000 levels of nesting to a buffering Service → 400 INVALID_JSON, with the JSON-RPC id null', async () => {
    const r = await post('/svc/json/', '['.repeat(8000) + ']'.repeat(8000));
    assert.equal(r.status, 400, r.raw.slice(0, 300));
    assert.equal(errorCode(r), 'OCT_ERR_INVALID_JSON');
    await assertAlive();
  });

  test('8 000 levels of nesting in a JSON-RPC request to a buffering Service → 400', async () => {
    const r = await post('/svc/json/', `{"jsonrpc":"2.0","id":7,"method":"x","params":${'{"a":'.repeat(8000)}1${'}'.repeat(8000)}}`);
    assert.equal(r.status, 400, r.raw.slice(0, 300));
    await assertAlive();
  });

  test('8 000 levels of nesting to a non-buffering Service: forwarded as opaque bytes, the AccessLog survives', async () => {
    const body = '{"a":'.repeat(8000) + '1' + '}'.repeat(8000);
    const r = await post('/svc/echo/', body);
    assert.equal(r.status, 200);
    await assertAlive();
  });

  test('invalid UTF-8 in a JSON body → 400', async () => {
    const r = await post('/svc/json/', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
    assert.equal(r.status, 400, r.raw.slice(0, 300));
    assert.equal(errorCode(r), 'OCT_ERR_INVALID_JSON');
    await assertAlive();
  });

  const odd = ['[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"x"}]', '[]', '"x"', '1', 'null', '{"jsonrpc":"2.0","id":{"a":1},"method":"x"}', '{"jsonrpc":"2.0","id":1,"method":{"toString":1}}'];
  for (const body of odd) {
    test(`JSON body ${body.slice(0, 40)} is handled without a 5xx`, async () => {
      const r = await post('/svc/json/', body);
      assert.ok(r.status > 0 && r.status < 500, r.raw.slice(0, 300));
      await assertAlive();
    });
  }
});

describe('forwarding headers', () => {
  test('X-Forwarded-* from the client are replaced by what the gateway saw', async () => {
    const r = await rawGet(port, '/svc/echo/xff', ['x-forwarded-for: 10.9.9.9', 'x-forwarded-host: admin.internal', 'x-forwarded-proto: https', 'forwarded: for=10.9.9.9']);
    assert.equal(r.status, 200);
    const h = lastSeen().headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-host'], `localhost:${port}`);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h.forwarded, undefined);
  });
});

describe('a cluster behind one trusted proxy, with a small in-flight cap', () => {
  let tc2: TestCluster;
  let held: Server;
  const release: Array<() => void> = [];
  const seen2: Array<IncomingMessage['headers']> = [];

  before(async () => {
    // An upstream that holds /hold until released: requests stay in flight as long as the test wants.
    held = createServer((req, res) => {
      seen2.push(req.headers);
      if (req.url === '/hold') release.push(() => res.end('released'));
      else res.end('ok');
    });
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    tc2 = await startTestCluster({ options: { limits: { trustedProxyHops: 1, maxInflightPerUser: 2 } } });
    await tc2.api.apply({ resources: [service('held', { isAnonymous: true, config: { upstream: { url: `http://127.0.0.1:${(held.address() as AddressInfo).port}` } } })] });
  });

  after(async () => {
    for (const r of release.splice(0)) r();
    await tc2.close();
    held.close();
  });

  test('--trusted-proxy-hops 1: the proxy\'s X-Forwarded-* are kept and the peer appended', async () => {
    const r = await rawGet(tc2.cluster.port, '/svc/held/x', ['x-forwarded-for: 203.0.113.7', 'x-forwarded-proto: https', 'x-forwarded-host: mcp.example.com']);
    assert.equal(r.status, 200, r.raw.slice(0, 300));
    const h = seen2.at(-1)!;
    assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], 'mcp.example.com');
  });

  test('past maxInflightPerUser a caller gets 429 until one of its requests ends', async () => {
    const first = [rawGet(tc2.cluster.port, '/svc/held/hold'), rawGet(tc2.cluster.port, '/svc/held/hold')];
    const deadline = Date.now() + 5000;
    while (release.length < 2) {
      assert.ok(Date.now() < deadline, 'the two held requests never reached the upstream');
      await new Promise((r) => setTimeout(r, 20));
    }
    const third = await rawGet(tc2.cluster.port, '/svc/held/x');
    assert.equal(third.status, 429, third.raw.slice(0, 300));
    assert.equal(errorCode(third), 'OCT_ERR_RATE_LIMITED');
    for (const r of release.splice(0)) r();
    assert.deepEqual((await Promise.all(first)).map((r) => r.status), [200, 200]);
    assert.equal((await rawGet(tc2.cluster.port, '/svc/held/x')).status, 200, 'the slots are given back');
  });
});

describe('upgrades', () => {
  test('a WebSocket upgrade that is reset right away does not end the process', async () => {
    for (const target of ['/api/v1/connect', '/svc/echo/', '/nowhere']) {
      const socket = connect(port, '127.0.0.1');
      await new Promise<void>((r) => socket.on('connect', () => r()));
      socket.write(`GET ${target} HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\nauthorization: Bearer nope\r\n\r\n`);
      socket.resetAndDestroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    await assertAlive();
  });
});

test('no unexpected exception was counted during the suite, and /metrics says so', async () => {
  assert.deepEqual([...tc.cluster.faults.counts()], []);
  const text = await (await fetch(`${tc.cluster.url}/metrics`, { headers: { authorization: `Bearer ${tc.adminToken}` } })).text();
  assert.match(text, /# TYPE octelium_unexpected_errors_total counter/);
  assert.doesNotMatch(text, /^octelium_unexpected_errors_total\{/m);
  assert.match(text, /^octelium_accesslog_write_failures_total 0$/m);
});
