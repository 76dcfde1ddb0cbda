import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '@octelium-ts/shared';
import { TunnelHub } from '../../cluster/src/tunnel/index.js';
import {
  backoffDelay, connectStatePath, readConnectState, readConnectStates, startAgent, tunnelURL, type AgentState,
} from '../src/agent/index.js';
import { waitAgentState } from './helpers/agent-state.js';

// The state file lives under $HOME; give this test file a HOME of its own.
process.env.HOME = mkdtempSync(join(tmpdir(), 'octelium-connect-state-'));

test('backoff: jittered, first retry at most 1 s (well under 2 s), growing, capped at 10 s', () => {
  assert.equal(backoffDelay(0, {}, () => 0), 500);
  assert.equal(backoffDelay(0, {}, () => 1), 1000);
  assert.equal(backoffDelay(1, {}, () => 1), 2000);
  assert.equal(backoffDelay(3, {}, () => 1), 8000);
  assert.equal(backoffDelay(10, {}, () => 1), 10_000);
  assert.equal(backoffDelay(50, {}, () => 0), 5000, 'the cap is never below half of itself');
  const samples = new Set(Array.from({ length: 20 }, () => backoffDelay(2)));
  assert.ok(samples.size > 1, 'delays are jittered');
  for (const d of samples) assert.ok(d >= 2000 && d <= 4000);
});

test('tunnel URL: plain ws for loopback domains, wss otherwise', () => {
  assert.equal(tunnelURL('localhost:8090'), 'ws://localhost:8090/api/v1/connect');
  assert.equal(tunnelURL('127.0.0.1:9'), 'ws://127.0.0.1:9/api/v1/connect');
  assert.equal(tunnelURL('example.com'), 'wss://example.com/api/v1/connect');
});

test('with nothing listening the agent retries with backoff and says why', async () => {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r)); // a port that refuses connections
  const states: AgentState[] = [];
  const agent = await startAgent({
    domain: `127.0.0.1:${port}`, accessToken: 't', serve: ['x'], serveAll: false, publish: [],
    stateFile: false, log: () => {}, onState: (s) => states.push({ ...s }),
  });
  try {
    const t0 = Date.now();
    while (!states.some((s) => s.state === 'disconnected') && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
    const d = states.find((s) => s.state === 'disconnected')!;
    assert.ok(d, 'went to disconnected');
    assert.equal(d.lastErrorCode, 'NETWORK');
    assert.match(d.lastError!, /cannot open the tunnel/);
    const retryIn = Date.parse(d.retryAt!) - Date.now();
    assert.ok(retryIn > 0 && retryIn <= 2000, `first retry in ${retryIn} ms`);
  } finally {
    await agent.close();
  }
});

test('the state file follows the connection and readConnectState reads it; it is removed on close', async () => {
  const services = new Map<string, Resource>([
    ['my-mcp', { apiVersion: 'core/v1', kind: 'Service', metadata: { name: 'my-mcp' }, spec: { config: { upstream: { url: 'http://127.0.0.1:1', user: 'mcp-01' } } } }],
  ]);
  const hub = new TunnelHub({
    authenticate: (t) => (t === 'tok' ? { user: { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'mcp-01' }, spec: {} }, via: 'session' } : undefined),
    getService: (n) => services.get(n),
    selfURL: () => 'http://127.0.0.1:1',
    log: () => {},
  });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const domain = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file = connectStatePath(domain);
  assert.ok(file.startsWith(join(process.env.HOME!, '.config', 'octelium')));
  assert.match(file, new RegExp(`connect-127\\.0\\.0\\.1_\\d+\\.${process.pid}\\.json$`));

  const agent = await startAgent({
    domain, accessToken: 'tok', serve: ['my-mcp', 'nope'], serveAll: false, publish: [{ service: 'my-mcp', port: 0 }],
    backoff: { initialMs: 100 }, log: () => {},
  });
  try {
    const t0 = Date.now();
    while (readConnectState(domain)?.state !== 'connected' && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    const st = readConnectState(domain)!;
    assert.equal(st.state, 'connected');
    assert.equal(st.pid, process.pid);
    assert.equal(st.domain, domain);
    assert.equal(st.user, 'mcp-01');
    assert.deepEqual(st.serving, ['my-mcp']);
    assert.equal(st.rejected?.[0]?.name, 'nope');
    assert.equal(st.publishing.length, 1);
    assert.equal(st.publishing[0].service, 'my-mcp');
    assert.match(st.publishing[0].address, /^127\.0\.0\.1:[1-9]\d*$/);
    assert.ok(!Number.isNaN(Date.parse(st.since)));
    assert.equal(st.lastError, undefined);

    // Cluster goes away: the file says so.
    await hub.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    const t1 = Date.now();
    while (readConnectState(domain)?.state === 'connected' && Date.now() - t1 < 3000) await new Promise((r) => setTimeout(r, 10));
    const down = readConnectState(domain)!;
    assert.notEqual(down.state, 'connected');
    assert.ok(down.lastError, 'the reason is recorded');
  } finally {
    await agent.close();
  }
  assert.equal(existsSync(file), false, 'state file removed on close');
  assert.equal(readConnectState(domain), undefined);

  // A file left by an agent that died is not reported as a running agent, and listing the agents removes it.
  const deadPid = 2 ** 22 + 12345;
  const dead = connectStatePath(domain, deadPid);
  writeFileSync(dead, JSON.stringify({ pid: deadPid, domain, state: 'connected', since: new Date().toISOString(), serving: [], publishing: [] }));
  assert.equal(readConnectState(domain, deadPid), undefined);
  assert.deepEqual(readConnectStates(domain), []);
  assert.equal(existsSync(dead), false);
});

test('several agents for one domain each keep their own state file; readConnectStates lists them all', async () => {
  const domain = '127.0.0.1:1';
  const opts = { domain, accessToken: 'tok', serve: [], serveAll: false, publish: [], backoff: { initialMs: 60_000 }, log: () => {} };
  const a = await startAgent({ ...opts, stateFile: connectStatePath(domain, 1) });
  // A second agent in this test process stands for another process: its file is named after another live pid.
  const b = await startAgent({ ...opts, stateFile: connectStatePath(domain, process.ppid) });
  try {
    await waitAgentState(a, (s) => s.state === 'disconnected');
    await waitAgentState(b, (s) => s.state === 'disconnected');
    const listed = readConnectStates(domain);
    assert.equal(listed.length, 2);
    assert.ok(listed.every((s) => s.domain === domain && s.state === 'disconnected'));
    assert.deepEqual(readConnectStates('127.0.0.1:2'), [], 'other domains are not mixed in');
  } finally {
    await a.close();
    await b.close();
  }
});
