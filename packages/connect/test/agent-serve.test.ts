/**
 * serveStream (the agent's side of a serve stream) against a real local upstream and undici, over an in-memory tunnel,
 * so exchange-level behaviour is checked deterministically and fast.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent as UndiciAgent, type Dispatcher } from 'undici';
import {
  TunnelMux, TunnelStreamError, createLinkedTransportPair, type RequestHead, type TunnelStream,
} from '@octelium-ts/shared';
import { serveStream } from '../src/agent/serve.js';

interface UpstreamStats { requests: number; aborted: number; closedEarly: number }

async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const stats: UpstreamStats = { requests: 0, aborted: 0, closedEarly: 0 };
  const server = createServer((req, res) => {
    stats.requests++;
    req.on('aborted', () => stats.aborted++);
    res.on('close', () => {
      if (!res.writableFinished) stats.closedEarly++;
    });
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url, stats,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A dispatcher that records, for every request the agent makes, whether the agent aborted it (the agent cancels
 * through the dispatch controller undici hands its handler; the controller's abort is wrapped to see that).
 */
class RecordingDispatcher extends UndiciAgent {
  requests: Array<{ aborted: boolean }> = [];
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const rec = { aborted: false };
    this.requests.push(rec);
    const start = handler.onRequestStart;
    if (start) {
      handler.onRequestStart = (controller, context) => {
        const abort = controller.abort.bind(controller);
        controller.abort = (reason) => {
          rec.aborted = true;
          abort(reason);
        };
        start.call(handler, controller, context);
      };
    }
    return super.dispatch(opts, handler);
  }
}

/** hub = the opener (as the cluster's hub), agent = the acceptor running serveStream. */
function tunnel(upstreamURL: string, dispatcher: Dispatcher) {
  const [a, b] = createLinkedTransportPair();
  const hub = new TunnelMux(a, { role: 'server' });
  const agent = new TunnelMux(b, { role: 'client' });
  const accepted = new Map([['svc', new Set([upstreamURL])]]);
  const agentStreams: TunnelStream[] = [];
  agent.onstream = (s) => {
    agentStreams.push(s);
    void serveStream(s, { accepted, dispatcher, log: () => {} });
  };
  return { hub, agent, agentStreams };
}

const head = (upstreamURL: string, method: string, path: string, hasBody: boolean): RequestHead => ({
  kind: 'serve', service: 'svc', upstreamURL, method, path, headers: { 'content-type': 'text/plain' }, hasBody,
});

async function readAll(s: TunnelStream): Promise<string> {
  let body = '';
  for await (const c of s.readable) body += c;
  return body;
}

const tick = () => new Promise((r) => setImmediate(r));
async function settle(turns = 20) {
  for (let i = 0; i < turns; i++) await tick();
}

test('an upstream that answers before reading the request body: the response is never reset (no 502)', async () => {
  // The upstream replies at once, without consuming the body. undici then sees "response completed before request"
  // and destroys the request-body readable (without an error) while the rest of the body is still in the tunnel.
  const up = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('early answer');
  });
  const dispatcher = new RecordingDispatcher();
  const t = tunnel(up.url, dispatcher);
  try {
    const failures: string[] = [];
    for (let i = 0; i < 40; i++) {
      const s = t.hub.openStream(head(up.url, 'POST', `/early?i=${i}`, true));
      // The body arrives in several chunks, spread over event-loop turns (as from a real client).
      const writing = (async () => {
        for (let c = 0; c < 4; c++) {
          s.writable.write(Buffer.alloc(8 * 1024, 0x61 + c));
          await settle(3);
        }
        s.writable.end();
      })();
      try {
        const h = await s.responseHead;
        const body = await readAll(s);
        if (h.status !== 200 || body !== 'early answer') failures.push(`#${i}: ${h.status} ${JSON.stringify(body)}`);
      } catch (err) {
        failures.push(`#${i}: ${err instanceof TunnelStreamError ? `RESET ${err.code}: ${err.reason}` : (err as Error).message}`);
      }
      await writing;
      await settle();
      if (!s.closed) failures.push(`#${i}: hub stream still open`);
      if (s.error) failures.push(`#${i}: hub stream ended with ${s.error.message}`);
    }
    assert.deepEqual(failures, []);
    assert.equal(t.hub.activeStreams, 0);
    assert.equal(t.agent.activeStreams, 0);
    assert.ok(t.agentStreams.every((s) => s.closed && !s.error), 'agent streams completed without a reset');
  } finally {
    t.hub.close();
    await dispatcher.close();
    await up.close();
  }
});

test('successful exchanges are not aborted: the upstream sees no aborted or cut requests', async () => {
  const up = await upstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${Buffer.concat(chunks).length}`);
    });
  });
  const dispatcher = new RecordingDispatcher();
  const t = tunnel(up.url, dispatcher);
  try {
    const N = 30;
    for (let i = 0; i < N; i++) {
      const withBody = i % 2 === 0;
      const s = t.hub.openStream(head(up.url, withBody ? 'POST' : 'GET', `/ok?i=${i}`, withBody));
      s.writable.end(withBody ? Buffer.alloc(1000) : undefined);
      const h = await s.responseHead;
      assert.equal(h.status, 200);
      assert.equal(await readAll(s), `got ${withBody ? 1000 : 0}`);
    }
    await settle();
    assert.equal(up.stats.requests, N);
    assert.equal(up.stats.aborted, 0, 'upstream saw aborted requests');
    assert.equal(up.stats.closedEarly, 0, 'upstream saw responses closed before they finished');
    assert.equal(dispatcher.requests.length, N);
    const aborted = dispatcher.requests.filter((r) => r.aborted).length;
    assert.equal(aborted, 0, `${aborted} of ${N} finished requests were aborted by the agent`);
    assert.ok(t.agentStreams.every((s) => s.closed && !s.error));
  } finally {
    t.hub.close();
    await dispatcher.close();
    await up.close();
  }
});

test('a stream reset by the hub while the upstream is still answering aborts the upstream request', async () => {
  let closed = 0;
  const up = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    res.on('close', () => closed++);
  });
  const dispatcher = new RecordingDispatcher();
  const t = tunnel(up.url, dispatcher);
  try {
    const s = t.hub.openStream(head(up.url, 'GET', '/hang', false));
    s.writable.end();
    await s.responseHead;
    const it = s.readable[Symbol.asyncIterator]();
    assert.equal(String((await it.next()).value), 'first\n');
    s.reset('CANCEL', 'client went away');
    const t0 = Date.now();
    while (!closed && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(closed, 1, 'upstream request closed after the reset');
    assert.equal(dispatcher.requests.filter((r) => r.aborted).length, 1);
  } finally {
    t.hub.close();
    await dispatcher.close();
    await up.close();
  }
});
