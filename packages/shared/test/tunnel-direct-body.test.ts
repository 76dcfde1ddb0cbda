/**
 * Bodies taken and given without the streams (TunnelStream#attach, #writeChunk/#endChunks): what the gateway's body
 * writer and the agent's undici handler use. Both ends are real multiplexers over an in-memory transport pair.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import {
  TunnelBudget, TunnelMux, TunnelStreamError, createLinkedTransportPair,
  type RequestHead, type TunnelBodySink, type TunnelStream,
} from '../src/tunnel/index.js';

const WINDOW = 64 * 1024;
const FRAME = 16 * 1024;

function pair(budget?: TunnelBudget) {
  const [a, b] = createLinkedTransportPair();
  const client = new TunnelMux(a, { role: 'client', streamWindow: WINDOW, maxDataFrame: FRAME });
  const server = new TunnelMux(b, { role: 'server', streamWindow: WINDOW, maxDataFrame: FRAME, budget });
  return { client, server };
}

const head = (hasBody = false): RequestHead => ({ kind: 'publish', service: 'svc', method: 'GET', path: '/', headers: {}, hasBody });

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const tick = () => new Promise((r) => setImmediate(r));
async function settle(turns = 20) {
  for (let i = 0; i < turns; i++) await tick();
}

/** A sink that records what it gets; `full` makes chunk() push back. */
function recordingSink() {
  const got: Buffer[] = [];
  const r = { got, ended: false, failed: undefined as Error | undefined, full: false, sink: undefined as unknown as TunnelBodySink };
  r.sink = {
    chunk: (c) => {
      got.push(Buffer.from(c));
      return !r.full;
    },
    end: () => (r.ended = true),
    fail: (err) => (r.failed = err),
  };
  return r;
}

/** Sends `body` with writeChunk in pieces of `piece` bytes, waiting for onwritable whenever it pushes back. */
async function writeChunks(s: TunnelStream, body: Buffer, piece: number): Promise<number> {
  let blocked = 0;
  for (let off = 0; off < body.length; off += piece) {
    if (!s.writeChunk(body.subarray(off, off + piece))) {
      blocked++;
      await new Promise<void>((resolve) => (s.onwritable = resolve));
    }
  }
  s.endChunks();
  return blocked;
}

test('an attached sink gets the whole body in order, then end; the stream completes and holds nothing', async () => {
  const { client, server } = pair();
  const body = pattern(5 * WINDOW + 123, 7);
  server.onstream = (s) => {
    s.readable.resume(); // the (empty) request body, read to its END as the agent does
    s.respond({ status: 200, headers: {} });
    s.writable.end(body);
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  const r = recordingSink();
  s.attach(r.sink);
  await settle();
  assert.equal(r.ended, true);
  assert.equal(r.failed, undefined);
  assert.deepEqual(Buffer.concat(r.got), body);
  assert.equal(s.closed, true);
  assert.equal(s.error, undefined);
  assert.equal(client.activeStreams, 0);
  assert.equal(server.activeStreams, 0);
  assert.equal(client.bufferedBytes, 0, 'nothing left charged to the budget');
});

test('an empty body that ended before the sink was attached ends it at once (a 202 with no body)', async () => {
  const { client, server } = pair();
  server.onstream = (s) => {
    s.readable.resume();
    s.respond({ status: 202, headers: {} });
    s.writable.end();
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  await settle(); // END arrives before anyone attaches
  const r = recordingSink();
  s.attach(r.sink);
  assert.equal(r.ended, true);
  assert.deepEqual(r.got, []);
  await settle();
  assert.equal(s.closed, true);
  assert.equal(s.error, undefined);
  assert.equal(client.activeStreams, 0);
});

test('a full sink holds the body back: the rest waits within the window, charged, until resume', async () => {
  const { client, server } = pair();
  const body = pattern(4 * WINDOW, 3);
  let writerDone = false;
  server.onstream = (s) => {
    s.respond({ status: 200, headers: {} });
    s.writable.end(body, () => (writerDone = true));
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  const r = recordingSink();
  r.full = true;
  const source = s.attach(r.sink);
  await settle();
  const first = Buffer.concat(r.got).length;
  assert.ok(first > 0 && first <= FRAME, `one frame went to the sink before it pushed back (${first})`);
  assert.equal(writerDone, false, 'the sender is held by the window');
  assert.ok(s.queuedBytes <= WINDOW, `no more than a window is queued (${s.queuedBytes})`);
  assert.ok(client.bufferedBytes >= s.queuedBytes, 'what is queued is charged to the budget');
  r.full = false;
  source.resume();
  await settle(40);
  assert.equal(r.ended, true);
  assert.deepEqual(Buffer.concat(r.got), body);
  assert.equal(writerDone, true);
  assert.equal(s.closed, true);
  assert.equal(client.bufferedBytes, 0);
});

test('a reset reaches an attached sink as fail(TunnelStreamError); attaching to a reset stream fails at once', async () => {
  const { client, server } = pair();
  let peer!: TunnelStream;
  server.onstream = (s) => {
    peer = s;
    s.respond({ status: 200, headers: {} });
    s.writable.write(Buffer.from('part'));
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  const r = recordingSink();
  s.attach(r.sink);
  await settle();
  assert.equal(Buffer.concat(r.got).toString(), 'part');
  peer.reset('UPSTREAM_FAILED', 'upstream cut the body');
  await settle();
  assert.ok(r.failed instanceof TunnelStreamError);
  assert.equal((r.failed as TunnelStreamError).code, 'UPSTREAM_FAILED');
  assert.equal(r.ended, false);

  const s2 = client.openStream(head());
  s2.writable.end();
  await s2.responseHead.catch(() => {});
  s2.reset('CANCEL', 'gone');
  const r2 = recordingSink();
  s2.attach(r2.sink);
  assert.ok(r2.failed instanceof TunnelStreamError);
  assert.throws(() => s2.attach(recordingSink().sink), /already being read/);
});

test('stopping an attached body before its end resets the stream on the peer (CANCEL); the sink hears nothing more', async () => {
  const { client, server } = pair();
  let peer!: TunnelStream;
  server.onstream = (s) => {
    peer = s;
    s.respond({ status: 200, headers: {} });
    s.writable.write(pattern(FRAME, 1));
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  const r = recordingSink();
  const source = s.attach(r.sink);
  await settle();
  source.stop();
  await settle();
  assert.equal(s.closed, true);
  assert.equal(peer.closed, true);
  assert.equal(peer.error?.code, 'CANCEL');
  assert.equal(r.ended, false);
  assert.equal(r.failed, undefined, 'a consumer that gave up is not told of the reset it caused');
  assert.equal(client.bufferedBytes, 0);
});

test('writeChunk sends a body bigger than the window: it pushes back, resumes on onwritable, END follows the last chunk', async () => {
  const { client, server } = pair();
  const body = pattern(6 * WINDOW + 77, 9);
  let blocked = -1;
  server.onstream = async (s) => {
    s.readable.resume();
    s.respond({ status: 200, headers: {} });
    blocked = await writeChunks(s, body, 48 * 1024);
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  const got = await readAll(s.readable);
  await settle();
  assert.deepEqual(got, body);
  assert.ok(blocked > 0, 'the producer was paused at least once');
  assert.equal(s.closed, true);
  assert.equal(s.error, undefined);
  assert.equal(server.activeStreams, 0, 'the acceptor completed with END sent by endChunks');
  assert.equal(server.bufferedBytes, 0);
});

test('endChunks while a chunk waits for credit sends END only after it; both direct modes together', async () => {
  const { client, server } = pair();
  const body = pattern(2 * WINDOW, 5);
  server.onstream = (s) => {
    s.readable.resume();
    s.respond({ status: 200, headers: {} });
    assert.equal(s.writeChunk(body), false, 'more than the window: pending');
    s.endChunks();
    assert.equal(s.closed, false);
  };
  const s = client.openStream(head());
  s.writable.end();
  await s.responseHead;
  const r = recordingSink();
  s.attach(r.sink);
  await settle(40);
  assert.equal(r.ended, true);
  assert.deepEqual(Buffer.concat(r.got), body);
  assert.equal(client.activeStreams, 0);
  assert.equal(server.activeStreams, 0);
});

test('writeChunk before respond() throws, on a closed stream returns false; over the budget it resets OVER_BUDGET', async () => {
  const budget = new TunnelBudget(WINDOW + 1024);
  const { client, server } = pair(budget);
  const accepted: TunnelStream[] = [];
  server.onstream = (s) => accepted.push(s);
  const s = client.openStream(head());
  s.writable.end();
  await settle();
  const a = accepted[0];
  assert.throws(() => a.writeChunk(Buffer.from('x')), /respond\(\)/);
  a.respond({ status: 200, headers: {} });
  assert.equal(a.writeChunk(Buffer.alloc(2 * WINDOW)), false);
  await settle();
  assert.equal(a.closed, true);
  assert.equal(a.error?.code, 'OVER_BUDGET');
  assert.equal(a.writeChunk(Buffer.from('late')), false);
  await s.responseHead;
  await settle();
  assert.equal(s.error?.code, 'OVER_BUDGET');
  assert.equal(budget.used, 0);
});

test('readable and writable are made on first use; asked for after a reset they are already destroyed (no hang)', async () => {
  const { client, server } = pair();
  const accepted: TunnelStream[] = [];
  server.onstream = (s) => accepted.push(s);
  const s = client.openStream(head());
  s.endChunks();
  await settle();
  accepted[0].reset('UPSTREAM_FAILED', 'gone');
  await settle();
  assert.equal(s.closed, true);
  await assert.rejects(readAll(s.readable), (err: Error) => err instanceof TunnelStreamError && err.code === 'UPSTREAM_FAILED');
  assert.equal(s.writable.destroyed, true);
  assert.equal(client.activeStreams, 0);
});

test('discard() takes an empty request body\'s END: the acceptor completes (left untaken, its stream stays open)', async () => {
  const { client, server } = pair();
  const accepted: TunnelStream[] = [];
  server.onstream = (s) => {
    accepted.push(s);
    if (accepted.length === 1) s.discard();
    s.respond({ status: 200, headers: {} });
    s.writeChunk(Buffer.from('hi'));
    s.endChunks();
  };
  for (let i = 0; i < 2; i++) {
    const s = client.openStream(head());
    s.endChunks();
    await s.responseHead;
    assert.equal((await readAll(s.readable)).toString(), 'hi');
  }
  await settle();
  assert.equal(accepted[0].closed, true, 'discarded: complete');
  assert.equal(accepted[1].closed, false, 'never taken: still open');
  assert.equal(server.activeStreams, 1);
  assert.equal(client.activeStreams, 0);
});
