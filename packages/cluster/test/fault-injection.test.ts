/**
 * Fault injection, streaming half (issue 18 §5): an upstream that cuts its SSE response, and an `octelium connect`
 * agent SIGKILLed while a client reads an SSE stream through it. Real cluster (in-process, real SQLite file), real
 * HTTP upstreams on 127.0.0.1:0, real agent child processes. The crash/disk half is fault-injection-crash.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import type { AccessLog } from '@octelium-ts/shared';
import {
  oauth2Token, service, startBin, startTestCluster, tempDir, user, type BinProcess, type TestCluster,
} from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

/** A stream that neither ends nor errors within this long counts as hung. */
const END_BOUND_MS = 3000;
const allowAll = { inlinePolicies: [{ spec: { rules: [{ effect: 'ALLOW', condition: { match: 'true' } }] } }] };

let tc: TestCluster;
let cutter: TestUpstream;
let ticker: TestUpstream;
let token: string;
const agents: BinProcess[] = [];
const tickers = new Set<NodeJS.Timeout>();

/** SSE every 100 ms until the client (the agent's undici) goes away; `POST` answers one JSON-RPC result. */
function tickHandler(req: IncomingMessage, res: ServerResponse, body: string): void {
  if (req.method === 'POST') {
    const id = (JSON.parse(body) as { id: number }).id;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { ok: true } }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let n = 0;
  const t = setInterval(() => res.write(`data: tick-${n++}\n\n`), 100);
  tickers.add(t);
  res.on('close', () => {
    clearInterval(t);
    tickers.delete(t);
  });
}

before(async () => {
  tc = await startTestCluster();
  // `/cut`: two events, then the socket is destroyed with no chunked terminator. `/complete`: the same two events, ended.
  cutter = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: one\n\n');
    res.write('data: two\n\n');
    if (req.url === '/complete') res.end();
    else setTimeout(() => res.socket?.destroy(), 50);
  });
  ticker = await startUpstream(tickHandler);
  await tc.api.apply({
    resources: [
      user('fi-client'), user('fi-agent'),
      service('cut-sse', { config: { upstream: { url: cutter.url } }, authorization: allowAll }),
      service('agent-sse', { config: { upstream: { url: ticker.url, user: 'fi-agent' } }, authorization: allowAll }),
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'fi-client');
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')));
  for (const t of tickers) clearInterval(t);
  await cutter?.close();
  await ticker?.close();
  await tc?.close();
});

interface StreamOutcome { events: string[]; ended: 'end' | 'error'; error?: string; afterMs: number }

/**
 * Reads an SSE response body until it ends or errors, keeping the events read before a cut (readSseArrivals throws
 * them away on error). Fails if the body is still open after `END_BOUND_MS` past `from()`, i.e. the client hangs.
 */
async function readUntilEnd(body: AsyncIterable<Buffer>, onEvent: (data: string, n: number) => void = () => {}, from = () => Date.now()): Promise<StreamOutcome> {
  const events: string[] = [];
  let buf = '';
  const read = (async (): Promise<StreamOutcome> => {
    try {
      for await (const chunk of body) {
        buf += chunk.toString();
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          events.push(buf.slice(0, i).replace(/^data: /, ''));
          buf = buf.slice(i + 2);
          onEvent(events.at(-1)!, events.length);
        }
      }
      return { events, ended: 'end', afterMs: Date.now() - from() };
    } catch (err) {
      return { events, ended: 'error', error: (err as Error).message, afterMs: Date.now() - from() };
    }
  })();
  const outcome = await Promise.race([read, new Promise<'hung'>((r) => setTimeout(() => r('hung'), END_BOUND_MS + 5000).unref())]);
  assert.notEqual(outcome, 'hung', `the client's stream never ended; events so far: ${events.join(', ')}`);
  const o = outcome as StreamOutcome;
  assert.ok(o.afterMs < END_BOUND_MS, `the client's stream ended only ${o.afterMs} ms after the fault`);
  return o;
}

async function logsOf(svc: string, count: number): Promise<AccessLog[]> {
  // The AccessLog is recorded in the pipeline's `finally`, which may run just after the client saw the cut.
  for (let i = 0; i < 100; i++) {
    const { items } = await tc.api.accessLogs({ service: svc, limit: 1000 });
    if (items.length >= count) return items;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`fewer than ${count} AccessLogs for ${svc}`);
}

const get = (path: string) => request(`${tc.cluster.url}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });

test('upstream dies mid-SSE: the client sees both events and a cut (no hang), the cluster serves on, the AccessLog says the body was cut', { timeout: 30_000 }, async () => {
  const res = await get('/svc/cut-sse/events');
  assert.equal(res.statusCode, 200);
  const t0 = Date.now();
  const cut = await readUntilEnd(res.body, undefined, () => t0);
  assert.deepEqual(cut.events, ['one', 'two']);
  // A cut must not look like a complete response: the gateway drops the client's connection instead of ending the body.
  assert.equal(cut.ended, 'error', 'a cut upstream must reach the client as a cut, not as a clean end');

  const whole = await get('/svc/cut-sse/complete');
  assert.equal(whole.statusCode, 200);
  const complete = await readUntilEnd(whole.body);
  assert.deepEqual(complete, { ...complete, events: ['one', 'two'], ended: 'end' });

  const logs = await logsOf('cut-sse', 2);
  const cutLog = logs.find((l) => l.entry.info.http.request.path === '/events')!;
  const okLog = logs.find((l) => l.entry.info.http.request.path === '/complete')!;
  // Both were allowed and both sent `200` + 22 bytes; only `error` tells the cut one apart (the status line the client
  // got is kept, as Envoy's access log keeps it, rather than a 5xx nobody saw).
  for (const l of [cutLog, okLog]) {
    assert.equal(l.entry.common.status, 'ALLOWED');
    assert.equal(l.entry.info.http.response.code, 200);
    assert.equal(l.entry.info.http.response.bodyBytes, 22);
  }
  assert.equal(okLog.entry.common.error, undefined);
  assert.equal(cutLog.entry.common.error?.code, 'OCT_ERR_UPSTREAM_FAILED', 'an upstream cut, not an internal gateway error');
  assert.match(cutLog.entry.common.error!.message, /^upstream response ended early after 22 bytes: /);
});

function startAgent(authToken: string): BinProcess {
  const a = startBin('octelium', ['connect', '--domain', tc.cluster.domain, '--auth-token', authToken, '--serve', 'agent-sse'], { HOME: tempDir('octelium-home-') });
  agents.push(a);
  return a;
}

async function agentToken(name: string): Promise<string> {
  const { token: t } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name }, spec: { type: 'AUTH_TOKEN', user: 'fi-agent' } });
  return t.authenticationToken!;
}

test('agent SIGKILLed mid-stream: the stream ends, JSON-RPC requests get 503 UPSTREAM_NOT_CONNECTED, a restarted agent serves again', { timeout: 30_000 }, async () => {
  const agent = startAgent(await agentToken('fi-agent-auth-1'));
  await agent.waitFor(/connected to .* as fi-agent; serving agent-sse/);

  const res = await get('/svc/agent-sse/events');
  assert.equal(res.statusCode, 200);
  let killedAt = 0;
  const outcome = await readUntilEnd(res.body, (_data, n) => {
    if (n === 2) {
      killedAt = Date.now();
      agent.proc.kill('SIGKILL');
    }
  }, () => killedAt);
  assert.deepEqual(outcome.events.slice(0, 2), ['tick-0', 'tick-1']);
  assert.equal(outcome.ended, 'error', 'the stream was cut, and the client must see a cut');
  assert.equal(await agent.stop(), null, 'the agent died of the signal');

  const rpc = await request(`${tc.cluster.url}/svc/agent-sse/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'after-kill', method: 'tools/list' }),
  });
  assert.equal(rpc.statusCode, 503);
  const body = (await rpc.body.json()) as { jsonrpc: string; id: string; error: { code: number; data: { code: string } } };
  assert.equal(body.jsonrpc, '2.0');
  assert.equal(body.id, 'after-kill');
  assert.equal(body.error.data.code, 'OCT_ERR_UPSTREAM_NOT_CONNECTED');
  const plain = await get('/svc/agent-sse/events');
  assert.equal(plain.statusCode, 503);
  assert.equal(((await plain.body.json()) as { error: { code: string } }).error.code, 'OCT_ERR_UPSTREAM_NOT_CONNECTED');

  const logs = await logsOf('agent-sse', 3);
  const cutLog = logs.find((l) => l.entry.info.http.request.path === '/events' && l.entry.info.http.response.code === 200)!;
  assert.equal(cutLog.entry.common.error?.code, 'OCT_ERR_UPSTREAM_FAILED');
  assert.match(cutLog.entry.common.error!.message, /^upstream response ended early after \d+ bytes: /);

  const again = startAgent(await agentToken('fi-agent-auth-2'));
  await again.waitFor(/connected to .* as fi-agent; serving agent-sse/);
  const ok = await request(`${tc.cluster.url}/svc/agent-sse/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
  });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(await ok.body.json(), { jsonrpc: '2.0', id: 7, result: { ok: true } });
  const stream = await get('/svc/agent-sse/events');
  assert.equal(stream.statusCode, 200);
  let first = '';
  for await (const chunk of stream.body) {
    first += chunk.toString();
    if (first.includes('\n\n')) break; // leaving the loop destroys the body, so the upstream's interval stops
  }
  assert.match(first, /^data: tick-0\n\n/);
});
