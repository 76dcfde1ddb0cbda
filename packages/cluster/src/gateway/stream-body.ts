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

/** What produces a body: it is handed the sink and answers with the controls the writer needs. */
export interface BodyProducer {
  attach(sink: BodySink): BodySource;
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
 * here a held stream keeps the writer object, its listener and at most one timer.
 */
export function writeBody(ctx: GatewayContext, maps: BodyMap[], producer: BodyProducer): Promise<void> {
  return new BodyWriter(ctx, maps).start(producer);
}

/**
 * The writer of one response body. One object with methods rather than a closure per role: it runs for every
 * proxied response, and the closures, the `res` listeners added and removed per response and their `once`
 * wrappers were a share of each request's CPU and garbage. The client going away is learnt from the request's
 * cancel signal (the pipeline aborts it when `res` closes unfinished); `drain` is listened for only while the
 * client's socket is full.
 */
class BodyWriter implements BodySink {
  #settled = false;
  #source?: BodySource;
  #timer?: NodeJS.Timeout;
  #waitingForDrain = false;
  /** Made the first time the client's socket is full (most responses never fill it). */
  #onDrain?: () => void;
  #resolve!: () => void;
  #reject!: (err: unknown) => void;

  constructor(private readonly ctx: GatewayContext, private readonly maps: BodyMap[]) {}

  start(producer: BodyProducer): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.ctx.abort.signal;
    if (signal.aborted) {
      // Gone before the body started: the producer is stopped at once; `chunk` refuses whatever it still hands over.
      this.#settled = true;
      try {
        const source = producer.attach(this);
        source.stop();
        source.detach();
      } catch {
        /* a producer that cannot even start: there is nobody left to tell */
      }
      this.#reject(new Error('client closed the response'));
      return promise;
    }
    signal.addEventListener('abort', this.#onClientGone);
    const idle = this.maps.find(hasIdle)?.idle;
    // Written past the maps: they hold partial events back, so what went out so far ends on an event boundary.
    if (idle) this.#timer = setTimeout(() => this.#keepAlive(idle.chunk), idle.ms);
    try {
      this.#source = producer.attach(this);
    } catch (err) {
      // The producer failed to start: the writer settles with its error, and leaves no listener or timer behind
      // (a listener left on the cancel signal would reject nothing anyone awaits when the client later goes away).
      this.#done(err);
      return promise;
    }
    if (this.#settled) this.#source.detach(); // the producer settled while connecting (a body that had already ended)
    return promise;
  }

  chunk(c: Buffer): boolean {
    if (this.#settled) return false;
    this.#timer?.refresh();
    try {
      if (!this.maps.length) return this.#send(c);
      let ok = true;
      for (const out of this.#through([c], false)) ok = this.#send(out) && ok;
      return ok;
    } catch (err) {
      this.#source?.stop();
      this.#done(err);
      return false;
    }
  }

  end(): void {
    try {
      if (this.maps.length) for (const c of this.#through([], true)) this.#send(c);
      this.#done();
    } catch (err) {
      this.#done(err);
    }
  }

  fail(err: unknown): void {
    this.#done(err);
  }

  #send(chunk: Buffer): boolean {
    if (!chunk.length) return true;
    this.ctx.responseBytes += chunk.length;
    if (this.ctx.res.write(chunk)) return true;
    if (!this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.ctx.res.once('drain', (this.#onDrain ??= () => {
        this.#waitingForDrain = false;
        this.#source?.resume();
      }));
    }
    return false;
  }

  #through(chunks: Buffer[], final: boolean): Buffer[] {
    for (const m of this.maps) {
      const out: Buffer[] = [];
      for (const c of chunks) out.push(...m.map(c));
      if (final) out.push(...m.end());
      chunks = out;
    }
    return chunks;
  }

  #done(err?: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#source?.detach();
    this.ctx.abort.signal.removeEventListener('abort', this.#onClientGone);
    if (this.#waitingForDrain) this.ctx.res.off('drain', this.#onDrain!);
    if (err === undefined) this.#resolve();
    else this.#reject(err);
  }

  readonly #onClientGone = (): void => {
    this.#source?.stop();
    this.#done(new Error('client closed the response'));
  };

  #keepAlive(chunk: Buffer): void {
    if (!this.ctx.res.writableNeedDrain) this.#send(chunk);
    this.#timer?.refresh();
  }
}

function hasIdle(m: BodyMap): boolean {
  return m.idle !== undefined;
}

/** Streams a Readable body to the client (see writeBody). */
export function streamBody(ctx: GatewayContext, body: Readable, maps: BodyMap[]): Promise<void> {
  return writeBody(ctx, maps, { attach: (sink) => {
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
  } });
}
