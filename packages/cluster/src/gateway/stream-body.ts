import type { Readable } from 'node:stream';
import type { BodyMap, GatewayContext } from './context.js';

/** Where a streamed upstream body's chunks go (the client's response, through the maps). */
export interface BodySink {
  /** One upstream chunk; false when the client is full: the source holds further chunks until `resume`. */
  chunk(c: Buffer): boolean;
  /** The upstream ended the body. */
  end(): void;
  /** The upstream cut the body (or failed it). */
  fail(err: unknown): void;
}

/** What the writer needs of the body's producer. */
export interface BodySource {
  /** The client drained: send again. */
  resume(): void;
  /** The response is over early (client gone, a map failed): stop producing. */
  stop(): void;
  /** The response is over: drop any listeners on the producer. */
  detach(): void;
}

/**
 * Writes a streamed upstream body to the client through the body maps in order, with backpressure (the source is
 * held while the client's socket is full), and keep-alives while the body is silent when a map asks for them;
 * resolves when the body ended, rejects with the body's error, or when the client went away first.
 *
 * One writer for every producer: a Readable (the tunnel, federation: `streamBody`), or a direct upstream's dispatch
 * handler (`UpstreamResponse.attach`, no stream in between).
 *
 * Why events and not `for await`: a response can stay open for hours (an idle MCP SSE stream). An async-iterator
 * loop keeps the stream's iterator, its pending read promise and every generator of the chain alive per stream;
 * here a held stream keeps a few listeners, one closure context and at most one timer.
 */
export function writeBody(ctx: GatewayContext, maps: BodyMap[], connect: (sink: BodySink) => BodySource): Promise<void> {
  const { res } = ctx;
  const idle = maps.find((m) => m.idle)?.idle;
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    let source: BodySource | undefined;
    const send = (chunk: Buffer): boolean => {
      if (!chunk.length) return true;
      ctx.responseBytes += chunk.length;
      return res.write(chunk);
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
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      source?.detach();
      res.off('drain', onDrain).off('close', onClose);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = () => source?.resume();
    // The pipeline aborts ctx.abort on the same event (its listener runs first), which the caller checks.
    const onClose = () => {
      if (res.writableFinished) return;
      source?.stop();
      done(new Error('client closed the response'));
    };
    const sink: BodySink = {
      chunk(c) {
        if (settled) return false;
        timer?.refresh();
        try {
          if (!maps.length) return send(c);
          let ok = true;
          for (const out of through([c], false)) ok = send(out) && ok;
          return ok;
        } catch (err) {
          source?.stop();
          done(err);
          return false;
        }
      },
      end() {
        try {
          if (maps.length) for (const c of through([], true)) send(c);
          done();
        } catch (err) {
          done(err);
        }
      },
      fail: (err) => done(err),
    };
    res.on('drain', onDrain).once('close', onClose);
    if (idle) {
      // Written past the maps: they hold partial events back, so what went out so far ends on an event boundary.
      timer = setTimeout(function keepAlive() {
        if (!res.writableNeedDrain) send(idle.chunk);
        timer!.refresh();
      }, idle.ms);
    }
    source = connect(sink);
    if (settled) source.detach(); // the producer settled while connecting (a body that had already ended)
  });
}

/** Streams a Readable body to the client (see writeBody). */
export function streamBody(ctx: GatewayContext, body: Readable, maps: BodyMap[]): Promise<void> {
  return writeBody(ctx, maps, (sink) => {
    const onData = (chunk: Buffer) => {
      if (!sink.chunk(chunk)) body.pause(); // resumed on 'drain'
    };
    const onEnd = () => sink.end();
    const onError = (err: unknown) => sink.fail(err);
    // Destroyed without an error or an end (a cut tunnel stream, say): as `for await` would, fail as premature close.
    const onBodyClose = () => {
      if (!body.readableEnded) sink.fail(Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    };
    body.on('data', onData).once('end', onEnd).on('error', onError).once('close', onBodyClose);
    return {
      resume: () => body.resume(),
      stop: () => body.destroy(),
      // The 'error' listener stays: a body destroyed after this must not throw an unhandled 'error'.
      detach: () => void body.off('data', onData).off('end', onEnd).off('close', onBodyClose),
    };
  });
}
