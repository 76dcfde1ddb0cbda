import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import {
  FrameType, TunnelMux, TunnelStreamError, WebSocketTransport,
  type AcceptedService, type ControlMessage, type RequestHead, type TunnelStream,
} from '@octelium-ts/shared';
import { startAgent, type AgentHandle, type AgentState } from '../src/agent/index.js';

/** A local HTTP server that records every request it gets. */
async function recorder() {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url!);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from ${req.url}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, paths, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * A hand-written (possibly malicious) hub: answers HELLO with whatever WELCOME the test wants, then lets the test
 * open arbitrary serve streams toward the agent.
 */
async function fakeHub(welcome: (hello: ControlMessage) => { services: AcceptedService[]; goAway?: { code: string; reason: string } }) {
  const server: Server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let resolveMux!: (m: TunnelMux) => void;
  const connected = new Promise<TunnelMux>((r) => (resolveMux = r));
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const mux = new TunnelMux(new WebSocketTransport(ws), { role: 'server' });
      void mux.start();
      mux.oncontrol = (m) => {
        if (m.type !== FrameType.HELLO) return;
        const w = welcome(m);
        if (w.goAway) {
          mux.close(4002, 'bye', w.goAway);
          return;
        }
        mux.sendControl(FrameType.WELCOME, { version: 1, agentId: 'fake', user: 'alice', services: w.services, rejected: [] });
        resolveMux(mux);
      };
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    connected,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

async function agentTo(port: number): Promise<AgentHandle> {
  return startAgent({
    domain: `127.0.0.1:${port}`, accessToken: 't', serve: ['svc'], serveAll: false, publish: [],
    stateFile: false, backoff: { initialMs: 100, maxMs: 200 }, log: () => {},
  });
}

const serveHead = (upstreamURL: string, path = '/x', service = 'svc'): RequestHead => ({
  kind: 'serve', service, upstreamURL, method: 'GET', path, headers: {}, hasBody: false,
});

async function outcome(s: TunnelStream): Promise<{ status: number; body: string } | { reset: string }> {
  s.writable.end();
  try {
    const h = await s.responseHead;
    let body = '';
    for await (const c of s.readable) body += c;
    return { status: h.status, body };
  } catch (err) {
    return { reset: (err as TunnelStreamError).code };
  }
}

test('the agent dials only upstream URLs accepted for the Service: it is not an open proxy', async () => {
  const good = await recorder();
  const evil = await recorder();
  const hub = await fakeHub(() => ({ services: [{ name: 'svc', upstreams: [good.url] }] }));
  const agent = await agentTo(hub.port);
  try {
    const mux = await hub.connected;
    // Accepted Service and URL: served.
    assert.deepEqual(await outcome(mux.openStream(serveHead(good.url, '/ok'))), { status: 200, body: 'hello from /ok' });
    // Another URL for the same Service: refused, and nothing reaches it.
    assert.deepEqual(await outcome(mux.openStream(serveHead(evil.url, '/steal'))), { reset: 'REFUSED' });
    // The good URL under a Service that was not accepted: refused.
    assert.deepEqual(await outcome(mux.openStream(serveHead(good.url, '/x', 'other'))), { reset: 'REFUSED' });
    // A path that tries to switch hosts stays on the accepted origin.
    const evilHost = new URL(evil.url).host;
    const r = await outcome(mux.openStream(serveHead(good.url, `//${evilHost}/steal`)));
    assert.equal((r as { status: number }).status, 200);
    // A publish stream toward the agent is refused as well.
    const pub = mux.openStream({ ...serveHead(good.url), kind: 'publish' });
    assert.deepEqual(await outcome(pub), { reset: 'REFUSED' });
    assert.deepEqual(evil.paths, [], 'the other server never saw a request');
    assert.deepEqual(good.paths, ['/ok', `//${evilHost}/steal`]);

    // Only the hub's SERVICES update widens the list (e.g. the Service's upstream.url changed).
    mux.sendControl(FrameType.SERVICES, { services: [{ name: 'svc', upstreams: [evil.url] }] });
    assert.deepEqual(await outcome(mux.openStream(serveHead(evil.url, '/now-ok'))), { status: 200, body: 'hello from /now-ok' });
    assert.deepEqual(await outcome(mux.openStream(serveHead(good.url, '/old'))), { reset: 'REFUSED' });
  } finally {
    await agent.close();
    await hub.close();
    for (const s of [good, evil]) {
      s.server.closeAllConnections();
      await new Promise((r) => s.server.close(r));
    }
  }
});

test('the agent sends the upstream exactly the path it was given: no dot-segment resolution, no slash merging, no re-encoding', async () => {
  const up = await recorder();
  const base = `${up.url}/base`;
  const hub = await fakeHub(() => ({ services: [{ name: 'svc', upstreams: [base] }] }));
  const agent = await agentTo(hub.port);
  try {
    const mux = await hub.connected;
    // What the gateway authorized is what the upstream must see; anything else is a path no policy looked at.
    const paths = ['/a/../admin', '/a/%2e%2e/admin', '/a/.%2E/admin', '/a//b///c', '/a/./b', '/{x}|^`', '/a%2Fb?q=../x', '/a/..'];
    for (const p of paths) {
      const r = await outcome(mux.openStream(serveHead(base, p)));
      assert.equal((r as { status: number }).status, 200, `${p}: ${JSON.stringify(r)}`);
    }
    assert.deepEqual(up.paths, paths.map((p) => `/base${p}`));
    // A target that cannot go on a request line is refused, not mangled.
    assert.deepEqual(await outcome(mux.openStream(serveHead(base, '/a b'))), { reset: 'REFUSED' });
    assert.equal(up.paths.length, paths.length);
  } finally {
    await agent.close();
    await hub.close();
    up.server.closeAllConnections();
    await new Promise((r) => up.server.close(r));
  }
});

test('an upstream that cannot be reached resets the stream with UPSTREAM_FAILED and the reason', async () => {
  const dead = await recorder();
  const deadURL = dead.url;
  await new Promise((r) => dead.server.close(r));
  const hub = await fakeHub(() => ({ services: [{ name: 'svc', upstreams: [deadURL] }] }));
  const agent = await agentTo(hub.port);
  try {
    const mux = await hub.connected;
    const s = mux.openStream(serveHead(deadURL));
    s.writable.end();
    await assert.rejects(s.responseHead, (e: unknown) => {
      const err = e as TunnelStreamError;
      return err.code === 'UPSTREAM_FAILED' && /ECONNREFUSED/.test(err.reason);
    });
  } finally {
    await agent.close();
    await hub.close();
  }
});

test('a request arriving in the same read as WELCOME is served, not dropped', async () => {
  const good = await recorder();
  const server: Server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let first: Promise<unknown> | undefined;
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const mux = new TunnelMux(new WebSocketTransport(ws), { role: 'server' });
      mux.oncontrol = (m) => {
        if (m.type !== FrameType.HELLO) return;
        // Cork the socket so WELCOME and the first REQUEST_HEAD leave in one TCP segment.
        const sock = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
        sock.cork();
        mux.sendControl(FrameType.WELCOME, { version: 1, agentId: 'x', user: 'alice', services: [{ name: 'svc', upstreams: [good.url] }], rejected: [] });
        first = outcome(mux.openStream(serveHead(good.url, '/first')));
        sock.uncork();
      };
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const agent = await agentTo((server.address() as AddressInfo).port);
  try {
    await waitConnected(agent);
    while (!first) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(await first, { status: 200, body: 'hello from /first' });
  } finally {
    await agent.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    good.server.closeAllConnections();
    await new Promise((r) => good.server.close(r));
  }
});

test('a cluster that speaks no common protocol version is reported, not silently retried forever', async () => {
  const hub = await fakeHub(() => ({ services: [], goAway: { code: 'UNSUPPORTED_VERSION', reason: 'cluster speaks 2' } }));
  const agent = await agentTo(hub.port);
  try {
    const s = await new Promise<AgentState>((resolve) => {
      const f = (st: AgentState) => st.lastErrorCode && resolve(st);
      agent.on('state', f);
    });
    assert.equal(s.lastErrorCode, 'UNSUPPORTED_VERSION');
    assert.match(s.lastError!, /cluster speaks 2/);
  } finally {
    await agent.close();
    await hub.close();
  }
});

function waitConnected(a: AgentHandle): Promise<void> {
  if (a.state.state === 'connected') return Promise.resolve();
  return new Promise((resolve) => {
    const f = (s: AgentState) => {
      if (s.state !== 'connected') return;
      a.off('state', f);
      resolve();
    };
    a.on('state', f);
  });
}
