import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { FrameType, MAX_FRAME_BYTES, TunnelMux, WebSocketTransport, type ControlMessage } from '@octelium-ts/shared';
import { service, startTestCluster, type TestCluster } from './helpers/testing.js';
import { startUpstream } from './helpers/upstreams.js';

// Limits of the tunnel hub on a real cluster, driven by hand-written agents (docs/tunnel.md, Limits).

function tunnelURL(tc: TestCluster): string {
  return `ws://127.0.0.1:${tc.cluster.port}/api/v1/connect`;
}

/** Opens a tunnel WebSocket; resolves with it once open, or with the HTTP answer when the upgrade is refused. */
function dial(tc: TestCluster, token = tc.adminToken): Promise<{ ws: WebSocket } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(tunnelURL(tc), { headers: { authorization: `Bearer ${token}` } });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req: unknown, res: IncomingMessage) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

async function hello(ws: WebSocket, publish: string[] = []): Promise<TunnelMux> {
  const mux = new TunnelMux(new WebSocketTransport(ws), { role: 'client' });
  await mux.start();
  const welcome = new Promise<ControlMessage>((r) => (mux.oncontrol = r));
  mux.sendControl(FrameType.HELLO, { versions: [1], publish });
  assert.equal((await welcome).type, FrameType.WELCOME);
  return mux;
}

test('a User may hold maxConnectionsPerUser tunnel connections; the next upgrade gets 429 with a JSON error', async () => {
  const tc = await startTestCluster({ options: { tunnel: { maxConnectionsPerUser: 2 } } });
  const open: WebSocket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const r = await dial(tc);
      assert.ok('ws' in r, JSON.stringify(r));
      open.push(r.ws);
    }
    const refused = await dial(tc);
    assert.ok('status' in refused);
    assert.equal(refused.status, 429);
    const err = JSON.parse(refused.body).error;
    assert.equal(err.code, 'OCT_ERR_RATE_LIMITED');
    assert.match(err.message, /2 tunnel connections/);
    // Closing one frees its place.
    const gone = new Promise((r) => open[0].once('close', r));
    open[0].terminate();
    await gone;
    await new Promise((r) => setTimeout(r, 50));
    const again = await dial(tc);
    assert.ok('ws' in again, JSON.stringify(again));
    open.push(again.ws);
  } finally {
    for (const ws of open) ws.terminate();
    await tc.close();
  }
});

test('a tunnel message over maxPayload closes that connection (1009); the cluster carries on', async () => {
  const tc = await startTestCluster();
  try {
    const r = await dial(tc);
    assert.ok('ws' in r);
    const closed = new Promise<number>((res) => r.ws.once('close', (code) => res(code)));
    r.ws.send(Buffer.alloc(MAX_FRAME_BYTES + 1));
    assert.equal(await closed, 1009);
    assert.equal((await fetch(`${tc.cluster.url}/healthz`)).status, 200);
  } finally {
    await tc.close();
  }
});

test('an agent that opens streams and never reads cannot grow the hub\'s buffers past its budget', async () => {
  const perAgent = 1024 * 1024;
  const tc = await startTestCluster({ options: { tunnel: { maxBufferedBytesPerAgent: perAgent, maxBufferedBytes: 2 * perAgent } } });
  // Every response is 4 MiB, far more than the budget, produced as fast as the cluster takes it.
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const big = await startUpstream(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    for (let i = 0; i < 64; i++) {
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      if (res.destroyed) return;
    }
    res.end();
  });
  let ws: WebSocket | undefined;
  try {
    await tc.api.create(service('big', { config: { upstream: { url: big.url } } }));
    const r = await dial(tc);
    assert.ok('ws' in r);
    ws = r.ws;
    const mux = await hello(ws, ['big']);
    // Stop reading the socket: no DATA is consumed, no credit ever comes back, TCP fills up.
    (ws as unknown as { _socket: Socket })._socket.pause();
    for (let i = 0; i < 40; i++) mux.openStream({ kind: 'publish', service: 'big', method: 'GET', path: `/${i}`, headers: {}, hasBody: false }).writable.end();
    let max = 0;
    let maxTotal = 0;
    // Sample until the budget has been full for a while (the replays start one by one on a busy machine).
    let deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const agent = tc.cluster.tunnel.agents()[0];
      max = Math.max(max, agent?.bufferedBytes ?? 0);
      maxTotal = Math.max(maxTotal, tc.cluster.tunnel.buffers().used);
      if (max >= perAgent * 0.9) deadline = Math.min(deadline, Date.now() + 500);
      await new Promise((res) => setTimeout(res, 5));
    }
    assert.ok(max <= perAgent, `the agent's streams held ${max} bytes, budget ${perAgent}`);
    assert.ok(maxTotal <= 2 * perAgent);
    assert.ok(max >= perAgent / 2, `the budget was reached (${max})`);
    assert.equal((await fetch(`${tc.cluster.url}/healthz`)).status, 200);
    // Gone: everything it held is released.
    ws.terminate();
    const t0 = Date.now();
    while (tc.cluster.tunnel.buffers().used > 0 && Date.now() - t0 < 2000) await new Promise((res) => setTimeout(res, 10));
    assert.equal(tc.cluster.tunnel.buffers().used, 0);
  } finally {
    ws?.terminate();
    await tc.close();
    await big.close();
  }
});
