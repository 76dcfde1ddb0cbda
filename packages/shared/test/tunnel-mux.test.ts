import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DEFAULT_MAX_STREAMS, FrameType, MAX_GROWN_WINDOW, TunnelBudget, TunnelMux, TunnelStreamError, createLinkedTransportPair, encodeFrame, encodeJSONFrame,
  type ControlMessage, type LinkedPairOptions, type RequestHead, type TunnelStream,
} from '../src/tunnel/index.js';

const WINDOW = 64 * 1024;
const FRAME = 16 * 1024;

function pair(opts: LinkedPairOptions = {}) {
  const [a, b] = createLinkedTransportPair(opts);
  const client = new TunnelMux(a, { role: 'client', streamWindow: WINDOW, maxDataFrame: FRAME });
  const server = new TunnelMux(b, { role: 'server', streamWindow: WINDOW, maxDataFrame: FRAME });
  return { client, server, a, b };
}

const head = (path = '/', hasBody = true): RequestHead => ({
  kind: 'publish', service: 'svc', method: 'POST', path, headers: { 'content-type': 'text/plain' }, hasBody,
});

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const tick = () => new Promise((r) => setImmediate(r));
async function settle(turns = 20) {
  for (let i = 0; i < turns; i++) await tick();
}

test('request and response heads, bodies and END travel both ways', async () => {
  const { client, server } = pair();
  server.onstream = async (s) => {
    assert.equal(s.requestHead.path, '/echo?x=1');
    const body = await readAll(s.readable);
    s.respond({ status: 201, headers: { 'x-len': String(body.length) } });
    s.writable.end(Buffer.concat([Buffer.from('got:'), body]));
  };
  const s = client.openStream(head('/echo?x=1'));
  s.writable.end('hello');
  const res = await s.responseHead;
  assert.equal(res.status, 201);
  assert.equal(res.headers['x-len'], '5');
  assert.equal((await readAll(s.readable)).toString(), 'got:hello');
  await settle();
  assert.equal(s.closed, true);
  assert.equal(client.activeStreams, 0, 'completed streams are forgotten on the opener');
  assert.equal(server.activeStreams, 0, 'completed streams are forgotten on the acceptor');
});

test('control messages reach oncontrol parsed and validated', async () => {
  const { client, server } = pair();
  const got: ControlMessage[] = [];
  server.oncontrol = (m) => got.push(m);
  client.sendControl(FrameType.HELLO, { versions: [1], serve: ['a'] });
  await settle();
  assert.equal(got.length, 1);
  assert.equal(got[0].type, FrameType.HELLO);
  assert.deepEqual(got[0].message, { versions: [1], serve: ['a'], serveAll: false, publish: [] });
});

test('two large bodies interleave on one connection', async () => {
  const { client, server } = pair();
  const order: number[] = [];
  const done: Promise<void>[] = [];
  server.onstream = (s) => {
    s.readable.on('data', () => order.push(s.id));
    done.push(once(s.readable, 'end').then(() => {
      s.respond({ status: 200, headers: {} });
      s.writable.end();
    }));
  };
  const size = 512 * 1024;
  const s1 = client.openStream(head());
  const s2 = client.openStream(head());
  s1.writable.end(pattern(size, 1));
  s2.writable.end(pattern(size, 2));
  await Promise.all([s1.responseHead, s2.responseHead]);
  // Interleaving: stream 2's first chunk arrives long before stream 1's last one.
  const firstOf2 = order.indexOf(s2.id);
  const lastOf1 = order.lastIndexOf(s1.id);
  assert.ok(firstOf2 >= 0 && lastOf1 >= 0);
  assert.ok(firstOf2 < lastOf1, `stream ${s2.id} started at chunk ${firstOf2}, stream ${s1.id} ended at ${lastOf1}`);
  assert.ok(order.length >= (2 * size) / FRAME, 'bodies were split into frames');
});

test('a paused reader stalls only its own stream; its writer is backpressured and memory stays bounded', async () => {
  const { client, server } = pair();
  const accepted = new Map<string, TunnelStream>();
  server.onstream = (s) => {
    accepted.set(s.requestHead.path, s);
    if (s.requestHead.path === '/fast') s.readable.resume();
    // '/slow' is never read until the end of the test
  };
  const total = 4 * 1024 * 1024;
  const slow = client.openStream(head('/slow'));
  const fast = client.openStream(head('/fast'));

  // The slow writer: write until backpressure, counting how far it got.
  let slowAccepted = 0;
  let slowBlocked = false;
  const slowData = pattern(total, 7);
  for (let off = 0; off < total; off += 32 * 1024) {
    const ok = slow.writable.write(slowData.subarray(off, off + 32 * 1024));
    slowAccepted += 32 * 1024;
    if (!ok) {
      slowBlocked = true;
      break;
    }
  }
  assert.ok(slowBlocked, 'write() reports backpressure');

  // The fast stream moves 4 MiB through while the slow one is stuck.
  const t0 = Date.now();
  await pipeline(Readable.from([pattern(total, 3)]), fast.writable);
  await once(accepted.get('/fast')!.readable, 'end');
  assert.ok(Date.now() - t0 < 2000, 'fast stream was not held back by the slow one');
  assert.equal(accepted.get('/fast')!.bytesIn, total);

  await settle(50);
  const slowPeer = accepted.get('/slow')!;
  // Bounded: the peer holds at most one window (queued + in the Readable buffer); the sender holds its hwm + the rest
  // of the chunk being written, nothing like the 4 MiB it tried to send.
  assert.ok(slow.bytesOut <= WINDOW, `slow sender sent ${slow.bytesOut} bytes beyond the ${WINDOW} window`);
  assert.ok(slowPeer.bytesIn <= WINDOW, `slow receiver got ${slowPeer.bytesIn}`);
  assert.ok(slowPeer.queuedBytes + slowPeer.readable.readableLength <= WINDOW + 64 * 1024);
  assert.ok(slow.writable.writableLength <= 64 * 1024 + 32 * 1024, `writer buffered ${slow.writable.writableLength}`);
  assert.ok(slowAccepted < total / 4);

  // Resuming the reader lets everything through, byte for byte.
  const rest = slowData.subarray(slowAccepted);
  const reading = readAll(slowPeer.readable);
  await pipeline(Readable.from([rest]), slow.writable);
  const got = await reading;
  assert.equal(got.length, total);
  assert.ok(got.equals(slowData), 'slow stream data intact');
});

test('a reader that keeps up with a bulk body earns a larger window; a stalled one never does', async () => {
  const { client, server } = pair();
  const accepted = new Map<string, TunnelStream>();
  server.onstream = (s) => {
    accepted.set(s.requestHead.path, s);
    if (s.requestHead.path === '/fast') s.readable.resume();
  };
  const fast = client.openStream(head('/fast'));
  const slow = client.openStream(head('/slow'));
  slow.writable.write(pattern(4 * WINDOW, 1));
  await pipeline(Readable.from([pattern(4 * 1024 * 1024, 2)]), fast.writable);
  await once(accepted.get('/fast')!.readable, 'end');
  const grown = accepted.get('/fast')!.receiveWindow;
  assert.ok(grown > WINDOW && grown <= MAX_GROWN_WINDOW, `the fast reader's window is ${grown}`);
  await settle(50);
  const stalled = accepted.get('/slow')!;
  assert.equal(stalled.receiveWindow, WINDOW);
  assert.ok(stalled.bytesIn <= WINDOW, `the stalled reader received ${stalled.bytesIn} bytes`);
  slow.reset('CANCEL');
});

test('DATA waits while the transport is above its high-water mark', async () => {
  const { client, server, a } = pair({ highWaterMark: 48 * 1024, lowWaterMark: 16 * 1024, bytesPerTick: 16 * 1024 });
  let maxBuffered = 0;
  const origSend = a.send.bind(a);
  a.send = (f: Buffer) => {
    const r = origSend(f);
    maxBuffered = Math.max(maxBuffered, a.bufferedAmount);
    return r;
  };
  server.onstream = (s) => void readAll(s.readable).then((b) => {
    s.respond({ status: 200, headers: { n: String(b.length) } });
    s.writable.end();
  });
  const streams = [0, 1, 2, 3].map(() => client.openStream(head()));
  streams.forEach((s, i) => s.writable.end(pattern(256 * 1024, i)));
  const heads = await Promise.all(streams.map((s) => s.responseHead));
  assert.deepEqual(heads.map((h) => h.headers.n), ['262144', '262144', '262144', '262144']);
  // One frame may be queued past the mark (send reports false after queuing), not a whole body.
  assert.ok(maxBuffered <= 48 * 1024 + FRAME + 1024, `transport buffered up to ${maxBuffered}`);
});

test('reset by the opener reaches the acceptor with its code; reset before the head rejects responseHead', async () => {
  const { client, server } = pair();
  const seen: TunnelStreamError[] = [];
  let acceptor: TunnelStream | undefined;
  server.onstream = (s) => {
    acceptor = s;
    s.readable.on('error', (e) => seen.push(e as TunnelStreamError));
    s.readable.resume();
  };
  const s = client.openStream(head());
  s.writable.write('partial');
  await settle();
  s.reset('CANCEL', 'client went away');
  await assert.rejects(s.responseHead, (e: unknown) => e instanceof TunnelStreamError && e.code === 'CANCEL');
  await settle();
  assert.equal(seen.length, 1);
  assert.equal(seen[0].code, 'CANCEL');
  assert.equal(seen[0].remote, true);
  assert.equal(seen[0].reason, 'client went away');
  assert.equal(acceptor!.closed, true);
  assert.equal(server.activeStreams, 0);
});

test('destroying the response body before its end resets the stream on the peer', async () => {
  const { client, server } = pair();
  let peerError: TunnelStreamError | undefined;
  server.onstream = (s) => {
    s.respond({ status: 200, headers: {} });
    s.writable.write(pattern(1024, 1));
    s.writable.on('error', (e) => (peerError = e as TunnelStreamError));
  };
  const s = client.openStream(head('/', false));
  s.writable.end();
  await s.responseHead;
  s.readable.destroy();
  await settle();
  assert.equal(peerError?.code, 'CANCEL');
  assert.equal(server.activeStreams, 0);
  assert.equal(client.activeStreams, 0);
});

test('a peer that ignores flow control gets its stream reset (FLOW_CONTROL)', async () => {
  const { client, server, a } = pair();
  let err: TunnelStreamError | undefined;
  server.onstream = (s) => s.readable.on('error', (e) => (err = e as TunnelStreamError));
  const s = client.openStream(head());
  await settle();
  // Bypass the stream's credit accounting and push a window and a half at once.
  a.send(encodeFrame(FrameType.DATA, s.id, Buffer.alloc(WINDOW + WINDOW / 2)));
  await settle();
  assert.equal(err?.code, 'FLOW_CONTROL');
  await assert.rejects(s.responseHead, (e: unknown) => (e as TunnelStreamError).code === 'FLOW_CONTROL');
});

test('losing the connection fails every open stream with CONNECTION_LOST', async () => {
  const { client, server, a } = pair();
  server.onstream = () => {};
  const s1 = client.openStream(head());
  const s2 = client.openStream(head());
  let closed = false;
  client.onclose = () => (closed = true);
  await settle();
  a.kill();
  for (const s of [s1, s2]) {
    await assert.rejects(s.responseHead, (e: unknown) => (e as TunnelStreamError).code === 'CONNECTION_LOST');
  }
  assert.equal(closed, true);
  assert.equal(client.activeStreams, 0);
  assert.throws(() => client.openStream(head()));
});

test('a malformed frame closes the connection with GOAWAY PROTOCOL_ERROR', async () => {
  const { client, server, b } = pair();
  const controls: ControlMessage[] = [];
  server.oncontrol = (m) => controls.push(m);
  const closed = new Promise((r) => (server.onclose = r));
  // The server side "opens" a stream with an id of the client's parity: forbidden.
  b.send(encodeJSONFrame(FrameType.REQUEST_HEAD, 3, head()));
  await closed;
  assert.equal(client.closed, true);
  assert.equal(server.closed, true);
  assert.equal(controls.length, 1, 'GOAWAY was delivered before the close');
  assert.equal(controls[0].type, FrameType.GOAWAY);
  assert.equal((controls[0].message as { code: string }).code, 'PROTOCOL_ERROR');
});

test('too many open streams are refused with TOO_MANY_STREAMS, others unaffected', async () => {
  const [a, b] = createLinkedTransportPair();
  const client = new TunnelMux(a, { role: 'client' });
  const server = new TunnelMux(b, { role: 'server', maxStreams: 2 });
  server.onstream = () => {};
  const ss = [0, 1, 2].map(() => client.openStream(head()));
  await assert.rejects(ss[2].responseHead, (e: unknown) => (e as TunnelStreamError).code === 'TOO_MANY_STREAMS');
  assert.equal(server.activeStreams, 2);
  assert.equal(ss[0].closed, false);
});

test('an acceptor that abandons the request body (no error) still delivers its whole response; no RESET', async () => {
  // What undici does when the upstream answers before the request body ended: it destroys the body readable without
  // an error. The response in flight must survive; the rest of the request body is discarded.
  const { client, server } = pair();
  const acceptors: TunnelStream[] = [];
  server.onstream = (s) => {
    acceptors.push(s);
    s.readable.once('data', () => {
      s.readable.destroy();
      s.respond({ status: 200, headers: {} });
      void (async () => {
        for (let i = 0; i < 3; i++) {
          s.writable.write(pattern(FRAME, i));
          await tick();
        }
        s.writable.end();
      })();
    });
  };
  for (let i = 0; i < 20; i++) {
    const s = client.openStream(head());
    // Several chunks, the later ones after the acceptor gave up; more than a window in all, so it needs credit.
    const writing = (async () => {
      for (let c = 0; c < 8; c++) {
        s.writable.write(pattern(WINDOW / 2, c));
        await settle(2);
      }
      s.writable.end();
    })();
    const res = await s.responseHead;
    assert.equal(res.status, 200);
    const body = await readAll(s.readable);
    assert.ok(body.equals(Buffer.concat([0, 1, 2].map((n) => pattern(FRAME, n)))), 'response intact');
    await writing;
    await settle();
    assert.equal(s.closed, true);
    assert.equal(s.error, undefined, `opener stream ended with ${s.error?.message}`);
    assert.equal(s.bytesOut, 4 * WINDOW, 'the whole request body was sent (credit came back for discarded bytes)');
  }
  assert.ok(acceptors.every((a) => a.closed && !a.error), 'acceptor streams completed, not reset');
  assert.equal(client.activeStreams, 0);
  assert.equal(server.activeStreams, 0);
});

test('abandoned request bodies leak no credit: a long run of them never stalls the connection', async () => {
  const { client, server } = pair();
  let discarded = 0;
  server.onstream = (s) => {
    // Give up on the body right away (nothing read), answer later, after the body has ended.
    s.readable.destroy();
    s.once('close', () => (discarded += s.bytesIn));
    setTimeout(() => {
      s.respond({ status: 204, headers: {} });
      s.writable.end();
    }, 1);
  };
  const size = 3 * WINDOW + 123;
  const t0 = Date.now();
  for (let round = 0; round < 10; round++) {
    const streams = Array.from({ length: 20 }, () => client.openStream(head()));
    for (const s of streams) {
      s.writable.end(pattern(size, round));
      s.readable.resume();
    }
    const heads = await Promise.all(streams.map((s) => s.responseHead));
    assert.ok(heads.every((h) => h.status === 204));
    await Promise.all(streams.map((s) => (s.closed ? undefined : once(s, 'close'))));
    assert.ok(streams.every((s) => !s.error && s.bytesOut === size), 'every body went through in full');
  }
  await settle();
  assert.equal(discarded, 200 * size);
  assert.equal(client.activeStreams, 0);
  assert.equal(server.activeStreams, 0);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('an abandoned body is reset only once the other direction is done too', async () => {
  const { client, server } = pair();
  let acceptor: TunnelStream | undefined;
  let peerError: TunnelStreamError | undefined;
  server.onstream = (s) => {
    acceptor = s;
    s.readable.resume();
    s.respond({ status: 200, headers: {} });
    s.writable.write(pattern(1024, 1)); // a response that never ends
    s.writable.on('error', (e) => (peerError = e as TunnelStreamError));
  };
  // The opener gives up on the response while its request body is still being written: not a reset yet.
  const s = client.openStream(head());
  s.writable.write('part one');
  await s.responseHead;
  s.readable.destroy();
  await settle();
  assert.equal(s.closed, false);
  assert.equal(acceptor!.closed, false);
  s.writable.write('part two');
  await settle();
  // Its request is done and nobody wants the response: now the peer is told to stop.
  s.writable.end();
  await settle();
  assert.equal(s.closed, true);
  assert.equal(peerError?.code, 'CANCEL');
  assert.equal(client.activeStreams, 0);
  assert.equal(server.activeStreams, 0);
});

test('a readable destroyed after the peer ended its side completes the stream without a RESET', async () => {
  const { client, server } = pair();
  let acceptor: TunnelStream | undefined;
  server.onstream = (s) => {
    acceptor = s;
    s.readable.resume();
    s.respond({ status: 200, headers: {} });
    s.writable.end(pattern(4096, 1));
  };
  const s = client.openStream(head('/', false));
  s.writable.end();
  await s.responseHead;
  await settle(); // DATA and END have arrived, nothing was read
  s.readable.destroy();
  await settle();
  assert.equal(s.closed, true);
  assert.equal(s.error, undefined);
  assert.equal(acceptor!.closed, true);
  assert.equal(acceptor!.error, undefined, 'the acceptor was not reset');
});

test('the stream limit: the default allows well over 1024 idle streams; a configured one is honoured', async () => {
  assert.ok(DEFAULT_MAX_STREAMS >= 10_000);
  const { client, server } = pair();
  // Idle SSE-like streams: a response head and nothing more.
  server.onstream = (s) => {
    s.readable.resume();
    s.respond({ status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  const n = 1100;
  const streams = Array.from({ length: n }, () => client.openStream(head('/sse', false)));
  for (const s of streams) s.writable.end();
  const heads = await Promise.all(streams.map((s) => s.responseHead));
  assert.equal(heads.length, n);
  assert.equal(server.activeStreams, n);
  assert.equal(client.activeStreams, n);
  client.close();

  const [a, b] = createLinkedTransportPair();
  const c2 = new TunnelMux(a, { role: 'client' });
  const s2 = new TunnelMux(b, { role: 'server', maxStreams: 5 });
  s2.onstream = (s) => s.respond({ status: 200, headers: {} });
  const six = Array.from({ length: 6 }, () => c2.openStream(head('/', false)));
  await Promise.all(six.slice(0, 5).map((s) => s.responseHead));
  await assert.rejects(six[5].responseHead, (e: unknown) => (e as TunnelStreamError).code === 'TOO_MANY_STREAMS'
    && /more than 5 open streams/.test((e as TunnelStreamError).reason));
  assert.equal(s2.activeStreams, 5);
  c2.close();
});

test('a handler that throws costs one stream (onstream) or one connection (oncontrol), never the process', async () => {
  const { client, server } = pair();
  const errors: Error[] = [];
  server.onerror = (e) => errors.push(e);
  let calls = 0;
  server.onstream = (s) => {
    if (calls++ === 0) throw new Error('handler bug');
    s.respond({ status: 204, headers: {} });
    s.writable.end();
  };
  const bad = client.openStream(head('/', false));
  bad.writable.end();
  await assert.rejects(bad.responseHead, (e: unknown) => (e as TunnelStreamError).code === 'INTERNAL');
  const good = client.openStream(head('/', false));
  good.writable.end();
  assert.equal((await good.responseHead).status, 204, 'the connection still carries other streams');
  assert.equal(errors[0]?.message, 'handler bug');

  server.oncontrol = () => {
    throw new Error('control handler bug');
  };
  const goAways: ControlMessage[] = [];
  client.oncontrol = (m) => goAways.push(m);
  const closed = new Promise((r) => (client.onclose = r));
  client.sendControl(FrameType.HELLO, { versions: [1] });
  await closed;
  assert.equal(server.closed, true);
  assert.equal((goAways[0]?.message as { code: string }).code, 'INTERNAL_ERROR');
});

test('a peer that fills windows nobody reads cannot grow this side past its budget', async () => {
  const [a, b] = createLinkedTransportPair();
  const client = new TunnelMux(a, { role: 'client', streamWindow: WINDOW, maxDataFrame: FRAME });
  const budget = new TunnelBudget(8 * WINDOW);
  const server = new TunnelMux(b, { role: 'server', streamWindow: WINDOW, maxDataFrame: FRAME, budget });
  const accepted: TunnelStream[] = [];
  server.onstream = (s) => void accepted.push(s); // never read
  let max = 0;
  const sample = setInterval(() => (max = Math.max(max, budget.used)), 1);
  const streams = Array.from({ length: 20 }, () => client.openStream(head()));
  for (const s of streams) s.writable.write(pattern(WINDOW, 1)); // a full window each: 20 windows
  const outcomes: string[] = [];
  for (const s of streams) s.responseHead.catch((e: TunnelStreamError) => outcomes.push(e.code));
  await settle(100);
  clearInterval(sample);
  max = Math.max(max, budget.used);
  assert.ok(max <= budget.limit, `held ${max} of ${budget.limit}`);
  assert.ok(outcomes.filter((c) => c === 'OVER_BUDGET').length >= 12, outcomes.join(','));
  assert.equal(server.bufferedBytes, accepted.filter((s) => !s.closed).reduce((n, s) => n + s.chargedBytes, 0));
  assert.equal(server.canOpenStream(), false);
  // What the reader does take, and what is reset, is given back.
  for (const s of accepted) s.reset('CANCEL');
  assert.equal(budget.used, 0);
  assert.equal(server.canOpenStream(), true);
});

test('a peer that never returns credit cannot make this side hold unsent data past its budget', async () => {
  const [a, b] = createLinkedTransportPair();
  const client = new TunnelMux(a, { role: 'client', streamWindow: WINDOW, maxDataFrame: FRAME });
  const budget = new TunnelBudget(4 * WINDOW);
  const server = new TunnelMux(b, { role: 'server', streamWindow: WINDOW, maxDataFrame: FRAME, budget });
  const results: Array<Promise<string>> = [];
  server.onstream = (s) => {
    s.respond({ status: 200, headers: {} });
    // 8 windows of response; the opener reads none of it, so credit never comes back after the first window.
    results.push(pipeline(Readable.from((function* () {
      for (let i = 0; i < 32; i++) yield pattern(2 * FRAME, i);
    })()), s.writable).then(() => 'done', (e: TunnelStreamError) => e.code ?? 'error'));
  };
  let max = 0;
  const sample = setInterval(() => (max = Math.max(max, budget.used)), 1);
  for (let i = 0; i < 12; i++) client.openStream(head('/', false)).writable.end();
  await settle(200);
  clearInterval(sample);
  assert.ok(max <= budget.limit, `held ${max} of ${budget.limit}`);
  assert.ok(max >= 3 * WINDOW, `the budget was used (${max})`);
  client.close();
  const codes = await Promise.all(results);
  assert.ok(codes.includes('OVER_BUDGET'), codes.join(','));
  assert.equal(budget.used, 0);
});
