import type { Readable } from 'node:stream';
import type { BodyMap, GatewayContext } from './context.js';

/**
 * Streams an upstream body to the client from the body's events, with backpressure (the body pauses while the
 * client's socket is full), through the body maps in order; resolves when the body ended, rejects with the body's
 * error, or when the client went away first.
 *
 * Why events and not `for await`: a response can stay open for hours (an idle MCP SSE stream). An async-iterator
 * loop keeps the stream's iterator, its pending read promise and every generator of the chain alive per stream;
 * here a held stream keeps three listeners, one closure context and at most one timer.
 */
export function streamBody(ctx: GatewayContext, body: Readable, maps: BodyMap[]): Promise<void> {
  const { res } = ctx;
  const idle = maps.find((m) => m.idle)?.idle;
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const send = (chunk: Buffer) => {
      if (!chunk.length) return;
      ctx.responseBytes += chunk.length;
      if (!res.write(chunk)) body.pause(); // resumed on 'drain'
    };
    const through = (chunks: Buffer[], final: boolean): Buffer[] => {
      for (const m of maps) {
        const out: Buffer[] = [];
        for (const c of chunks) out.push(...m.map(c));
        if (final) out.push(...m.end());
        chunks = out;
      }
      return chunks;
    };
    let settled = false;
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The 'error' listener stays: a body destroyed after this must not throw an unhandled 'error'.
      body.off('data', onData).off('end', onEnd).off('close', onBodyClose);
      res.off('drain', onDrain).off('close', onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onData = (chunk: Buffer) => {
      timer?.refresh();
      try {
        if (!maps.length) send(chunk);
        else for (const c of through([chunk], false)) send(c);
      } catch (err) {
        body.destroy();
        done(err);
      }
    };
    const onEnd = () => {
      try {
        if (maps.length) for (const c of through([], true)) send(c);
        done();
      } catch (err) {
        done(err);
      }
    };
    // Destroyed without an error or an end (a cut tunnel stream, say): as `for await` would, fail as premature close.
    const onBodyClose = () => {
      if (!body.readableEnded) done(Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    const onDrain = () => body.resume();
    // The pipeline aborts ctx.abort on the same event (its listener runs first), which the caller checks.
    const onClose = () => {
      if (res.writableFinished) return;
      body.destroy();
      done(new Error('client closed the response'));
    };
    body.on('data', onData).once('end', onEnd).on('error', done).once('close', onBodyClose);
    res.on('drain', onDrain).once('close', onClose);
    if (idle) {
      // Written past the maps: they hold partial events back, so what went out so far ends on an event boundary.
      timer = setTimeout(function keepAlive() {
        if (!res.writableNeedDrain) send(idle.chunk);
        timer!.refresh();
      }, idle.ms);
    }
  });
}
