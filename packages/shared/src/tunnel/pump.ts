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
    from.off('data', onData);
    from.off('end', onEnd);
    from.off('error', onFromError);
    from.off('close', onFromClose);
    to.off('drain', onDrain);
    to.off('finish', onFinish);
    to.off('close', onToClose);
    to.off('error', onToError);
    done(err);
  };
  const onData = (chunk: Buffer): void => {
    if (!to.write(chunk)) from.pause();
  };
  const onDrain = (): void => {
    from.resume();
  };
  const onEnd = (): void => {
    to.end();
  };
  const onFinish = (): void => settle();
  const onFromError = (err: Error): void => settle(err);
  const onFromClose = (): void => {
    if (!from.readableEnded) settle(prematureClose('the body ended before it was complete'));
  };
  // Reported by 'close' (with `to.errored`); listened to so that it is never an unhandled 'error'.
  const onToError = (): void => {};
  const onToClose = (): void => {
    if (to.writableFinished) return;
    if (!from.destroyed) from.destroy();
    settle(to.errored ?? prematureClose('the receiving side closed'));
  };
  if (to.destroyed) {
    onToClose();
    return;
  }
  if (from.destroyed && !from.readableEnded) {
    settle(from.errored ?? prematureClose('the body ended before it was complete'));
    return;
  }
  from.on('data', onData);
  from.on('end', onEnd);
  from.on('error', onFromError);
  from.on('close', onFromClose);
  to.on('drain', onDrain);
  to.on('finish', onFinish);
  to.on('close', onToClose);
  to.on('error', onToError);
  if (from.readableEnded) onEnd();
}

function prematureClose(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
