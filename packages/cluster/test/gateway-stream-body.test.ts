import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { CancelController } from '@octelium-ts/shared';
import type { GatewayContext } from '../src/gateway/context.js';
import { streamBody, writeBody } from '../src/gateway/stream-body.js';
import { SseEventSplitter } from '../src/mcp/sse.js';

/** A client response that takes `room` writes before it pushes back, then drains on demand. */
class FakeRes extends EventEmitter {
  chunks: string[] = [];
  writableFinished = false;
  writableNeedDrain = false;
  constructor(public room = Infinity) {
    super();
  }
  write(c: Buffer): boolean {
    this.chunks.push(c.toString());
    this.writableNeedDrain = this.chunks.length >= this.room;
    return !this.writableNeedDrain;
  }
  drain(): void {
    this.room = Infinity;
    this.writableNeedDrain = false;
    this.emit('drain');
  }
}

/** The parts of a request the writer uses; `abort` is what the pipeline aborts when the client's response closes unfinished. */
const ctxOf = (res: FakeRes) => ({ res, responseBytes: 0, abort: new CancelController() }) as unknown as GatewayContext & { res: FakeRes };

test('streams chunks as they come, pauses the body while the client is full, counts bytes', async () => {
  const res = new FakeRes(1);
  const ctx = ctxOf(res);
  const body = new PassThrough();
  const done = streamBody(ctx, body, []);
  body.write('a');
  await new Promise((r) => setImmediate(r));
  assert.equal(body.isPaused(), true, 'paused after the client pushed back');
  body.write('b');
  res.drain();
  body.end('c');
  await done;
  assert.deepEqual(res.chunks.join(''), 'abc');
  assert.equal(ctx.responseBytes, 3);
  assert.equal(res.listenerCount('drain') + res.listenerCount('close'), 0, 'no listener left behind');
});

test('SSE: complete events only, keep-alives while idle, the rest at the end', async () => {
  const res = new FakeRes();
  const body = new PassThrough();
  const done = streamBody(ctxOf(res), body, [new SseEventSplitter(undefined, 40)]);
  body.write('data: 1\n\ndata: par');
  await new Promise((r) => setTimeout(r, 130));
  body.end('tial\n\n');
  await done;
  assert.equal(res.chunks[0], 'data: 1\n\n');
  assert.equal(res.chunks.at(-1), 'data: partial\n\n');
  const pings = res.chunks.slice(1, -1);
  assert.ok(pings.length >= 2 && pings.every((p) => p === ': keep-alive\n\n'), JSON.stringify(res.chunks));
});

test('the client going away destroys the body and rejects; a body cut by the upstream rejects with its error', async () => {
  const res = new FakeRes();
  const body = new PassThrough();
  const goneCtx = ctxOf(res);
  const gone = streamBody(goneCtx, body, []);
  goneCtx.abort.abort();
  await assert.rejects(gone, /client closed/);
  assert.equal(body.destroyed, true);
  // Already gone before the body started: rejected at once, the body never read.
  const late = ctxOf(new FakeRes());
  late.abort.abort();
  const unread = new PassThrough();
  await assert.rejects(streamBody(late, unread, []), /client closed/);
  assert.equal(unread.destroyed, true, 'the body is stopped');
  assert.deepEqual(late.res.chunks, []);

  const cut = new PassThrough();
  const failed = streamBody(ctxOf(new FakeRes()), cut, []);
  cut.destroy(new Error('socket hang up'));
  await assert.rejects(failed, /socket hang up/);

  const closed = new PassThrough();
  const premature = streamBody(ctxOf(new FakeRes()), closed, []);
  closed.destroy();
  await assert.rejects(premature, (e: { code?: string }) => e.code === 'ERR_STREAM_PREMATURE_CLOSE');
});

test('writeBody: a producer that already ended while connecting settles at once; a failing map stops the producer', async () => {
  const res = new FakeRes();
  let detached = 0;
  await writeBody(ctxOf(res), [], { attach: (sink) => {
    sink.chunk(Buffer.from('all'));
    sink.end();
    return { resume: () => undefined, stop: () => assert.fail('stopped a finished producer'), detach: () => void detached++ };
  } });
  assert.deepEqual(res.chunks, ['all']);
  assert.equal(detached, 1, 'detached once, after connect returned');

  let stopped = false;
  let push!: (c: Buffer) => boolean;
  const failing = writeBody(ctxOf(new FakeRes()), [{ map: () => { throw new Error('bad event'); }, end: () => [] }], { attach: (sink) => {
    push = (c) => sink.chunk(c);
    return { resume: () => undefined, stop: () => void (stopped = true), detach: () => undefined };
  } });
  assert.equal(push(Buffer.from('x')), false, 'the producer is told to hold');
  await assert.rejects(failing, /bad event/);
  assert.equal(stopped, true);
});

test('writeBody: a producer that throws while attaching rejects the body with its error and leaves nothing behind', async () => {
  const ctx = ctxOf(new FakeRes());
  const broken = writeBody(ctx, [{ map: (c) => [c], end: () => [], idle: { ms: 10, chunk: Buffer.from(': ka\n\n') } }], { attach: () => { throw new Error('cannot start'); } });
  await assert.rejects(broken, /cannot start/);
  // The client going away afterwards finds no writer listening: no second settlement, no unhandled rejection.
  let unhandled: unknown;
  const onUnhandled = (e: unknown) => void (unhandled = e);
  process.on('unhandledRejection', onUnhandled);
  ctx.abort.abort();
  await new Promise((r) => setTimeout(r, 30));
  process.off('unhandledRejection', onUnhandled);
  assert.equal(unhandled, undefined);
  assert.deepEqual(ctx.res.chunks, [], 'no keep-alive written by a timer left behind');
});
