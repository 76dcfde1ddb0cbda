import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { TunnelHub } from '../src/tunnel/index.js';
import { startTestCluster, type TestCluster } from './helpers/testing.js';

// The tunnel upgrade (`GET /api/v1/connect`) on a real cluster, driven over raw sockets: whatever a client does to the
// socket, the cluster keeps answering.

function upgradeRequest(port: number, token?: string): string {
  return [
    'GET /api/v1/connect HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...(token ? [`Authorization: Bearer ${token}`] : []),
    '', '',
  ].join('\r\n');
}

async function rawSocket(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  return s;
}

async function healthz(tc: { cluster: { url: string } }): Promise<number> {
  const res = await fetch(`${tc.cluster.url}/healthz`);
  await res.arrayBuffer();
  return res.status;
}

/** Resets right after the upgrade request with each kind of credential, at several moments; checks /healthz after each. */
async function resetEveryWay(tc: { cluster: { url: string; port: number } }, validToken: string): Promise<void> {
  const port = tc.cluster.port;
  for (const token of [undefined, 'not-a-session', validToken]) {
    for (const delayMs of [0, 2, 30]) {
      const s = await rawSocket(port);
      s.write(upgradeRequest(port, token));
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      s.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await healthz(tc), 200, `after a reset (token ${token ? token.slice(0, 4) : 'none'}, ${delayMs} ms)`);
    }
  }
}

test('an upgrade to /api/v1/connect followed by a TCP reset does not end the cluster', async () => {
  const tc = await startTestCluster();
  try {
    const port = tc.cluster.port;
    // No credential, a bad one, and a valid Session; reset at once, while the answer is being written, and later.
    await resetEveryWay(tc, tc.adminToken);
    // A half-written upgrade, reset mid-headers.
    const s = await rawSocket(port);
    s.write(upgradeRequest(port, tc.adminToken).slice(0, 60));
    s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await healthz(tc), 200);
  } finally {
    await tc.close();
  }
});

test('a completed tunnel upgrade that is reset mid-connection does not end the cluster', async () => {
  const tc = await startTestCluster();
  try {
    const port = tc.cluster.port;
    const s = await rawSocket(port);
    s.write(upgradeRequest(port, tc.adminToken));
    let got = '';
    await new Promise<void>((resolve) => s.on('data', (d) => ((got += d), got.includes('\r\n\r\n') && resolve())));
    assert.match(got, /^HTTP\/1\.1 101 /);
    // Half a WebSocket frame header, then a reset.
    s.write(Buffer.from([0x82]));
    await new Promise((r) => setTimeout(r, 10));
    s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await healthz(tc), 200);
  } finally {
    await tc.close();
  }
});

test('the hub guards its upgraded sockets itself, on a listener that adds no error handler', async () => {
  // The cluster's listener adds one too; the hub must not depend on it (it is mounted on plain servers as well).
  const hub = new TunnelHub({
    authenticate: (t) => (t === 'tok' ? { user: { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: {} }, via: 'session' } : undefined),
    getService: () => undefined,
    selfURL: () => 'http://127.0.0.1:1',
    log: () => {},
  });
  const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
  server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  try {
    await resetEveryWay({ cluster: { url: `http://127.0.0.1:${port}`, port } }, 'tok');
  } finally {
    await hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
