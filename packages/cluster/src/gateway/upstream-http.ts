import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AbortSignalLike } from '@octelium-ts/shared';
import type { UpstreamResponse } from './proxy.js';
import type { BodySink, BodySource } from './stream-body.js';

/** Bytes a response may queue before anyone reads it (the head is being handled): past this, undici is paused. */
const QUEUE_HIGH_WATER = 64 * 1024;

interface PendingHead { resolve: (r: UpstreamResponse) => void; reject: (err: Error) => void }

/**
 * One request to a direct HTTP upstream on undici's dispatch API instead of `request()`. The response body goes
 * from undici's parser to the gateway's body writer (stream-body.ts: the client's socket, through any SSE maps)
 * chunk by chunk, with backpressure through the dispatch controller (`pause` when the client's socket is full,
 * `resume` on its `drain`), and with no stream, async iterator or AbortSignal listener per request in between —
 * what `request()` + `for await` cost on every proxied request (docs/performance.md). When something must read the
 * body as a stream (response plugins buffer it) a Readable is made for that response only.
 *
 * Chunks that arrive before the gateway has handled the head (undici parses the head and the first data in one
 * go) wait in a small queue.
 */
class DirectResponse implements Dispatcher.DispatchHandler, BodySource {
  #controller?: Dispatcher.DispatchController;
  #abortReason?: Error;
  #head: PendingHead | undefined;
  #queue: Buffer[] = [];
  #queued = 0;
  /** Where the body goes once someone consumes it: the body writer, or the Readable made for a stream reader. */
  #consumer?: BodySink;
  #ended = false;
  #error?: Error;
  #readable?: Readable;

  constructor(head: PendingHead) {
    this.#head = head;
  }

  /** Whether the exchange is over (the body ended or failed): nothing left to abort. */
  get settled(): boolean {
    return this.#ended || this.#error !== undefined;
  }

  /** Aborts the upstream request (client gone, or the response is no longer wanted). */
  abort(reason: Error): void {
    if (this.settled) return;
    if (this.#controller) this.#controller.abort(reason);
    else this.#abortReason = reason;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason) controller.abort(this.#abortReason);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    const head = this.#head;
    this.#head = undefined;
    head?.resolve(new DirectUpstreamResponse(statusCode, headers, this));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#consumer) {
      if (!this.#consumer.chunk(chunk)) controller.pause();
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > QUEUE_HIGH_WATER) controller.pause();
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#consumer?.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.#head) {
      this.#head.reject(err);
      this.#head = undefined;
      return;
    }
    this.#error = err;
    this.#consumer?.fail(err);
  }

  /**
   * Hands the queued chunks and every later one to `consumer`, and the end if it came already; true when the
   * consumer took them all without pushing back.
   */
  #attach(consumer: BodySink): boolean {
    this.#consumer = consumer;
    let ok = true;
    for (const chunk of this.#queue) ok = consumer.chunk(chunk) && ok;
    this.#queue = [];
    this.#queued = 0;
    if (this.#error) consumer.fail(this.#error);
    else if (this.#ended) consumer.end();
    return ok;
  }

  /**
   * Hands the body to the gateway's body writer (stream-body.ts): chunks as undici parses them, held while it is
   * full. The handler itself is the writer's BodySource (no control object per response).
   */
  attachWriter(sink: BodySink): BodySource {
    if (this.#attach(sink) && !this.settled) this.#controller?.resume();
    return this;
  }

  /** BodySource: the client drained. */
  resume(): void {
    this.#controller?.resume();
  }

  /** BodySource: the response is over early. */
  stop(): void {
    this.abort(new Error('client went away'));
  }

  /** BodySource: nothing to let go of (the handler holds no listener of the writer's). */
  detach(): void {}

  /** The body as a Readable, for consumers that read a stream (response plugins buffer it whole). */
  stream(): Readable {
    if (this.#readable) return this.#readable;
    const readable = new Readable({
      read: () => this.#controller?.resume(),
      // The reader stopped early (its consumer threw or returned): the rest of the upstream response is not wanted.
      destroy: (err, cb) => {
        this.abort(err ?? new Error('upstream response no longer read'));
        cb(err);
      },
    });
    this.#readable = readable;
    this.#attach({ chunk: (c) => readable.push(c), end: () => void readable.push(null), fail: (err) => void readable.destroy(err as Error) });
    return readable;
  }
}

/** The head of a direct upstream's response; its body is read through the handler, as a stream or by the writer. */
class DirectUpstreamResponse implements UpstreamResponse {
  constructor(readonly statusCode: number, readonly headers: IncomingHttpHeaders, private readonly handler: DirectResponse) {}

  get body(): Readable {
    return this.handler.stream();
  }

  attach(sink: BodySink): BodySource {
    return this.handler.attachWriter(sink);
  }
}

/**
 * Sends one request and resolves with the response head once it arrives (rejects on failure before it); `signal`
 * aborts the exchange at any point. `dispose` is for the end of the request: it aborts a body nobody consumed.
 */
export function requestUpstream(agent: Dispatcher, opts: Dispatcher.DispatchOptions, signal: AbortSignalLike): { response: Promise<UpstreamResponse>; dispose: () => void } {
  let handler!: DirectResponse;
  const response = new Promise<UpstreamResponse>((resolve, reject) => {
    handler = new DirectResponse({ resolve, reject });
  });
  const onAbort = () => handler.abort(signal.reason instanceof Error ? signal.reason : new Error('client went away'));
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  agent.dispatch(opts, handler);
  // The Error (and its stack) only when there is something to abort: dispose runs at the end of every request.
  return { response, dispose: () => handler.settled || handler.abort(new Error('upstream response not consumed')) };
}
