/**
 * A published port (`octelium connect -p SVC:PORT`) acts as the agent's User with no credential, so it must forward
 * only paths under that Service, and only for local clients. Raw sockets against a real agent and a real cluster;
 * the agent's User is the cluster admin, so a path that escaped to /api/v1 would be obeyed (and would show).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import {
  FrameType, TunnelMux, TunnelStreamError, WebSocketTransport, type ControlMessage,
} from '@octelium-ts/shared';
import { service, startTestCluster, type TestCluster } from '@octelium-ts/cluster/testing';
import { startUpstream, type TestUpstream } from '../../cluster/test/helpers/upstreams.js';
import { startAgent, tunnelURL, type AgentHandle, type AgentState } from '../src/agent/index.js';
import { waitAgentState } from './helpers/agent-state.js';

let tc: TestCluster;
let pub: TestUpstream;
let other: TestUpstream;
let agent: AgentHandle;
let port: number;


async function publishAs(extra: Partial<Parameters<typeof startAgent>[0]> = {}): Promise<AgentHandle> {
  const a = await startAgent({
    domain: tc.cluster.domain, accessToken: tc.adminToken, serve: [], serveAll: false,
    publish: [{ service: 'pub', port: 0 }], stateFile: false, log: () => {}, ...extra,
  });
  await waitAgentState(a, (s) => s.state === 'connected', 5000);
  return a;
}

/** One raw HTTP/1.1 exchange: the request line and headers exactly as given. */
async function raw(p: number, requestLine: string, headers: Record<string, string> = { host: `127.0.0.1:${p}` }): Promise<{ status: number; body: string }> {
  const s = connect(p, '127.0.0.1');
  let out = '';
  s.on('data', (d) => (out += d));
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => {});
  const lines = [requestLine, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', ''];
  s.write(lines.join('\r\n'));
  await closed;
  const m = /^HTTP\/1\.1 (\d{3})/.exec(out);
  return { status: m ? Number(m[1]) : 0, body: out.slice(out.indexOf('\r\n\r\n') + 4) };
}

before(async () => {
  tc = await startTestCluster();
  pub = await startUpstream((_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('pub'));
  other = await startUpstream((_req, res) => void res.writeHead(200).end('other'));
  for (const [name, up] of [['pub', pub], ['other', other]] as const) {
    await tc.api.create(service(name, { config: { upstream: { url: up.url } } }));
  }
  agent = await publishAs();
  port = Number(agent.state.publishing[0].address.split(':').at(-1));
});

after(async () => {
  await agent?.close();
  await tc?.close();
  await pub?.close();
  await other?.close();
});

test('a published port forwards paths under its Service', async () => {
  const r = await raw(port, 'GET /ok/a?x=..%2F HTTP/1.1');
  assert.equal(r.status, 200, r.body);
  assert.equal(pub.requests.at(-1)?.url, '/ok/a?x=..%2F');
});

test('paths that could leave the Service are refused with 400 and reach nothing', async () => {
  const attempts = [
    'DELETE /../../api/v1/services/other HTTP/1.1',
    'DELETE /%2e%2e/%2e%2e/api/v1/services/other HTTP/1.1',
    'DELETE /.%2E/.%2e/api/v1/services/other HTTP/1.1',
    'DELETE /..%2F..%2Fapi/v1/services/other HTTP/1.1',
    'DELETE /x/..%5C..%5Capi/v1/services/other HTTP/1.1',
    'GET /../other/ HTTP/1.1',
    'GET /a/./b HTTP/1.1',
    'GET /a/%zz HTTP/1.1',
    `DELETE http://127.0.0.1:${tc.cluster.port}/api/v1/services/other HTTP/1.1`,
    'GET http://other/ HTTP/1.1',
  ];
  const seen = pub.requests.length;
  for (const line of attempts) {
    const r = await raw(port, line);
    assert.equal(r.status, 400, `${line}: ${r.body}`);
    assert.equal(JSON.parse(r.body).error.code, 'OCT_ERR_INVALID_REQUEST_TARGET', line);
  }
  // A raw backslash: Node's parser may refuse it first; either way it is a 400 and goes nowhere.
  assert.equal((await raw(port, 'GET /x/..\\..\\api/v1/services HTTP/1.1')).status, 400);
  assert.equal(pub.requests.length, seen, 'nothing reached the published Service');
  assert.equal(other.requests.length, 0, 'nothing reached the other Service');
  assert.equal((await tc.api.get('Service', 'other')).metadata.name, 'other', 'the API was never reached');
});

test('Host must be a loopback name with the port (DNS rebinding); a web Origin must be loopback too', async () => {
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
    assert.equal((await raw(port, 'GET /h HTTP/1.1', { host })).status, 200, host);
  }
  for (const host of [`evil.example:${port}`, 'localhost', `127.0.0.1:${port + 1}`, `localhost.evil.example:${port}`]) {
    const r = await raw(port, 'GET /h HTTP/1.1', { host });
    assert.equal(r.status, 403, host);
    assert.equal(JSON.parse(r.body).error.code, 'OCT_ERR_ORIGIN_NOT_ALLOWED');
    assert.match(JSON.parse(r.body).error.message, /DNS rebinding/);
  }
  const local = { host: `127.0.0.1:${port}` };
  assert.equal((await raw(port, 'GET /h HTTP/1.1', { ...local, origin: 'http://localhost:6274' })).status, 200);
  for (const origin of ['https://evil.example', 'null']) {
    assert.equal((await raw(port, 'GET /h HTTP/1.1', { ...local, origin })).status, 403, origin);
  }
});

test('--publish-allow-host adds a Host name', async () => {
  const a = await publishAs({ publishAllowedHosts: ['my-box.lan'] });
  try {
    const p = Number(a.state.publishing[0].address.split(':').at(-1));
    assert.equal((await raw(p, 'GET /h HTTP/1.1', { host: `my-box.lan:${p}` })).status, 200);
    assert.equal((await raw(p, 'GET /h HTTP/1.1', { host: `evil.example:${p}` })).status, 403);
  } finally {
    await a.close();
  }
});

test('the hub refuses an escaping publish path itself, whatever the agent sends', async () => {
  // A hand-driven agent: the same Session, but it skips the local checks.
  const ws = new WebSocket(tunnelURL(tc.cluster.domain), { headers: { authorization: `Bearer ${tc.adminToken}` } });
  const mux = new TunnelMux(new WebSocketTransport(ws), { role: 'client' });
  await mux.start();
  const welcome = new Promise<ControlMessage>((r) => (mux.oncontrol = r));
  mux.sendControl(FrameType.HELLO, { versions: [1], publish: ['pub'] });
  assert.equal((await welcome).type, FrameType.WELCOME);
  try {
    for (const path of ['/../../api/v1/services/other', '/%2e%2e/%2e%2e/api/v1/services/other', '/..%2f..%2fapi/v1/services/other', '/a\\..\\..\\api']) {
      const s = mux.openStream({ kind: 'publish', service: 'pub', method: 'DELETE', path, headers: {}, hasBody: false });
      s.writable.end();
      await assert.rejects(s.responseHead, (e: unknown) => (e as TunnelStreamError).code === 'REFUSED', path);
    }
    assert.equal((await tc.api.get('Service', 'other')).metadata.name, 'other', 'the API was never reached');
  } finally {
    mux.close();
  }
});
