import type { Readable, Writable } from 'node:stream';

/**
 * Copies `from` into `to` chunk by chunk, with backpressure, and calls `done` once: without an error when `to` has
 * finished, with one when `from` failed or ended early, or when `to` was destroyed before it finished.
 *
 * It is what the tunnel did with `stream.pipeline()`, minus what made that one of the largest costs per request on the
 * agent (docs/performance.md, "Tunnel, session 3"): pipeline allocates an AbortController per call and aborts it when
 * done, building a DOMException every time, and wraps each side in end-of-stream watchers. Unlike pipeline, a failing
 * source does not destroy `to`: the caller decides how the other end learns of it (a tunnel stream resets with a
 * code and reason). A destroyed `to` does destroy `from`, so an upstream body nobody reads is not left open.
 */
export function pump(from: Readable, to: Writable, done: (err?: Error) => void): void {
  let settled = false;
  const settle = (err?: Error): void => {
    if (settled) return;
    settled = true;
    for (const [emitter, event, listener] of listeners) emitter.off(event, listener);
    done(err);
  };
  const onToClose = (): void => {
    if (to.writableFinished) return;
    if (!from.destroyed) from.destroy();
    settle(to.errored ?? prematureClose('the receiving side closed'));
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const listeners: Array<[Readable | Writable, string, (...args: any[]) => void]> = [
    [from, 'data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    }],
    [from, 'end', () => to.end()],
    [from, 'error', (err: Error) => settle(err)],
    [from, 'close', () => {
      if (!from.readableEnded) settle(prematureClose('the body ended before it was complete'));
    }],
    [to, 'drain', () => from.resume()],
    [to, 'finish', () => settle()],
    [to, 'close', onToClose],
    // Reported by 'close' (with `to.errored`); listened to so that it is never an unhandled 'error'.
    [to, 'error', () => {}],
  ];
  if (to.destroyed) {
    onToClose();
    return;
  }
  if (from.destroyed && !from.readableEnded) {
    settle(from.errored ?? prematureClose('the body ended before it was complete'));
    return;
  }
  for (const [emitter, event, listener] of listeners) emitter.on(event, listener);
  if (from.readableEnded) to.end();
}

function prematureClose(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
