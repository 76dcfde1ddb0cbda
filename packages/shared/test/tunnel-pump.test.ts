import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pump } from '../src/tunnel/index.js';

function sink(opts: { slow?: boolean } = {}): Writable & { got: Buffer[] } {
  const got: Buffer[] = [];
  const w = new Writable({
    highWaterMark: 0,
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      if (opts.slow) setImmediate(cb);
      else cb();
    },
  }) as Writable & { got: Buffer[] };
  w.got = got;
  return w;
}

const done = () => {
  let resolve!: (err?: Error) => void;
  const p = new Promise<Error | undefined>((r) => (resolve = r));
  return { p, cb: (err?: Error) => resolve(err) };
};

test('pump copies every chunk in order with backpressure, ends the target, and reports success once', async () => {
  const chunks = Array.from({ length: 50 }, (_, i) => Buffer.from(`chunk ${i};`));
  const to = sink({ slow: true });
  const d = done();
  let calls = 0;
  pump(Readable.from(chunks), to, (err) => {
    calls++;
    d.cb(err);
  });
  assert.equal(await d.p, undefined);
  assert.equal(Buffer.concat(to.got).toString(), Buffer.concat(chunks).toString());
  assert.ok(to.writableFinished);
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 1);
});

test('a failing source is reported and does not destroy the target (the caller decides how it ends)', async () => {
  const from = new PassThrough();
  const to = sink();
  const d = done();
  pump(from, to, d.cb);
  from.write('a');
  from.destroy(new Error('upstream cut'));
  assert.equal((await d.p)?.message, 'upstream cut');
  assert.equal(to.destroyed, false);
});

test('a source that closes before its end is a premature close', async () => {
  const from = new PassThrough();
  const d = done();
  pump(from, sink(), d.cb);
  from.destroy();
  assert.equal((await d.p as Error & { code?: string })?.code, 'ERR_STREAM_PREMATURE_CLOSE');
});

test('a target destroyed before it finished destroys the source and reports it', async () => {
  const from = new PassThrough();
  const to = sink();
  const d = done();
  pump(from, to, d.cb);
  to.destroy(new Error('stream reset'));
  assert.equal((await d.p)?.message, 'stream reset');
  assert.ok(from.destroyed);
});
