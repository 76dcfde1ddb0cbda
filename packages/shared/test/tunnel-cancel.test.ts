import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent as UndiciAgent } from 'undici';
import { CancelController, CancelSignal } from '../src/tunnel/index.js';

test('CancelSignal: listeners run once on the first abort, removed ones never, late ones not at all', () => {
  const s = new CancelSignal();
  const calls: string[] = [];
  const a = () => calls.push('a');
  const b = () => calls.push('b');
  s.addEventListener('abort', a);
  s.addEventListener('abort', b);
  s.removeEventListener('abort', b);
  s.abort(new Error('why'));
  s.abort(new Error('again'));
  s.addEventListener('abort', () => calls.push('late'));
  assert.deepEqual(calls, ['a']);
  assert.equal(s.aborted, true);
  assert.equal((s.reason as Error).message, 'why');
});

test('undici takes a CancelSignal as a request signal and aborts a request waiting for its head', async () => {
  const server = createServer(() => {}); // never answers
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const dispatcher = new UndiciAgent();
  const cancel = new CancelSignal();
  const pending = dispatcher.request({ origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET', signal: cancel as unknown as AbortSignal });
  setTimeout(() => cancel.abort(new Error('stream reset')), 50);
  await assert.rejects(pending, /stream reset/);
  await dispatcher.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test('CancelController: abort reaches the light signal and a real AbortSignal, whether that was made before or after', () => {
  const early = new CancelController();
  const real = early.abortSignal;
  let heard = 0;
  early.signal.addEventListener('abort', () => heard++);
  early.abort(new Error('client went away'));
  early.abort(new Error('again'));
  assert.equal(heard, 1);
  assert.equal(early.signal.aborted, true);
  assert.equal(real.aborted, true);
  assert.equal((real.reason as Error).message, 'client went away');
  assert.equal(early.abortSignal, real, 'one AbortSignal per controller');

  const late = new CancelController();
  late.abort('gone');
  assert.equal(late.abortSignal.aborted, true, 'made after the abort, it is born aborted');
  assert.equal(late.abortSignal.reason, 'gone');
});
