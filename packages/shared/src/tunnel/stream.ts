import { EventEmitter } from 'node:events';
import { Readable, Writable } from 'node:stream';
import type { TunnelBudget } from './budget.js';
import { TunnelStreamError } from './errors.js';
import {
  FrameType, encodeFrame, encodeJSONFrame, encodeWindowFrame,
  type RequestHead, type ResetMessage, type ResponseHead,
} from './frames.js';

/** The largest window a stream's reader can earn by keeping up (see TunnelStream#returnCredit). */
export const MAX_GROWN_WINDOW = 4 * 1024 * 1024;

/**
 * Where a received body goes when it is taken without the Readable (`TunnelStream#attach`): the gateway's body
 * writer, which writes each chunk to the client's socket. Same shape as the gateway's BodySink.
 */
export interface TunnelBodySink {
  /** One DATA payload; false when the consumer is full: nothing more is handed over until `resume`. */
  chunk(c: Buffer): boolean;
  /** The peer ended the body. */
  end(): void;
  /** The stream was reset or the connection lost. */
  fail(err: Error): void;
}

/** The consumer's handle on an attached body (the gateway's BodySource shape). */
export interface TunnelBodySource {
  /** The consumer drained: hand over more. */
  resume(): void;
  /** The consumer gives up on the body (as destroying `readable` would). */
  stop(): void;
  /** The consumer is done; a body not yet ended is given up. */
  detach(): void;
}

/** What a stream needs from its multiplexer (kept narrow so the two files stay independent). */
export interface StreamHost {
  readonly streamWindow: number;
  readonly maxDataFrame: number;
  /** What this connection's streams may hold in memory (see TunnelBudget). */
  readonly budget: TunnelBudget;
  /** Control-ish frames (heads, END, RESET, WINDOW) are never held back: they are small and unblock peers. */
  sendControl(frame: Buffer): void;
  /** One DATA frame of `payload`; returns false when the connection is backpressured (the frame is still queued). */
  sendData(streamId: number, payload: Buffer): boolean;
  readonly blocked: boolean;
  waitDrain(stream: TunnelStream): void;
  forget(stream: TunnelStream): void;
  readonly alive: boolean;
}

/**
 * One logical HTTP exchange on the tunnel. The opener writes the request body to `writable` and reads the response
 * body from `readable`; the acceptor reads the request body from `readable`, calls `respond()`, then writes the
 * response body to `writable`.
 *
 * Flow control: the peer may send at most `streamWindow` bytes of DATA that this side has not yet handed to
 * `readable`'s consumer; credit goes back in WINDOW frames as the consumer reads. So a stream whose reader stalls
 * stops its own sender without touching the others, and each stream buffers at most window + highWaterMark. A stream
 * whose reader keeps up with a bulk body gets a larger window, up to MAX_GROWN_WINDOW (see #returnCredit).
 *
 * A stream is complete when both directions ended (END sent, and END consumed or the body abandoned). Calling
 * `reset()`, destroying either side with an error, or destroying `writable` before it finished sends RESET; a RESET from
 * the peer destroys both sides with a TunnelStreamError. Emits 'close' once (complete or reset; `error` tells which).
 *
 * Destroying `readable` without an error before its end abandons that body, which is not an error by itself: undici,
 * for one, does it to a request body when the upstream answered before the body ended. Further DATA for it is then
 * discarded (its credit still goes back, so the peer can finish its side), and the other direction carries on:
 * - the acceptor (the abandoned body is the request) keeps sending its response; the stream completes once the
 *   response has ended and the peer's END has arrived;
 * - the opener (the abandoned body is the response) sends RESET CANCEL as soon as its request body has been sent,
 *   unless the response had already ended on the wire: nothing is wanted from the peer any more.
 */
export class TunnelStream extends EventEmitter {
  readonly id: number;
  readonly initiator: 'local' | 'remote';
  /** The request head: sent by us (initiator local) or received (initiator remote). */
  readonly requestHead: RequestHead;
  #readable?: Readable;
  #writable?: Writable;
  /** DATA bytes received / sent on this stream. */
  bytesIn = 0;
  bytesOut = 0;
  /** Set when the stream ended abnormally. */
  error?: TunnelStreamError;

  readonly #host: StreamHost;
  #responseHead?: Promise<ResponseHead>;
  #resolveHead?: (h: ResponseHead) => void;
  #rejectHead?: (e: Error) => void;
  #responded = false;
  #closed = false;
  // send side
  #sendWindow: number;
  #pending?: { buf: Buffer; cb: (err?: Error | null) => void };
  // receive side
  #recvAllowance: number;
  /** The window this side grants: streamWindow at first, grown for a reader that keeps up (see #returnCredit). */
  #recvWindow: number;
  /** Bytes handed to the reader since the window last grew. */
  #readSinceGrowth = 0;
  #unacked = 0;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #wantRead = false;
  #remoteEnded = false;
  #pushedEnd = false;
  /** `readable` was destroyed without an error before its end: incoming DATA is discarded (and credited). */
  #readAbandoned = false;
  // memory accounting (host.budget): everything this stream holds, and the received part of it
  #charged = 0;
  #recvCharged = 0;
  /** Bytes pushed into `readable`; those no longer in its buffer were read by the consumer. */
  #pushedBytes = 0;
  #consumedBytes = 0;
  // body taken without the Readable (attach) / given without the Writable (writeChunk)
  #sink?: TunnelBodySink;
  #sinkPaused = false;
  /** The attached sink was told the body's end or failure, or was dropped: nothing more goes to it. */
  #sinkSettled = false;
  /** endChunks() sent END. */
  #chunksEnded = false;
  /** The attached sink was told the body ended normally. */
  #sinkEnded = false;
  /** writeChunk left a chunk pending: `onwritable` is due once it has gone out. */
  #chunkBlocked = false;
  /** endChunks() came while a chunk was pending: END follows it. */
  #endAfterChunk = false;
  /**
   * Called when a chunk that writeChunk() could not send at once has gone out in full: the producer may resume.
   * One property, not a closure per chunk.
   */
  onwritable?: () => void;

  /** `headBytes`: the size of a received head, held for the stream's life and charged to the budget (which has room). */
  constructor(host: StreamHost, id: number, initiator: 'local' | 'remote', head: RequestHead, headBytes = 0) {
    super();
    this.#host = host;
    this.id = id;
    this.initiator = initiator;
    this.requestHead = head;
    this.#sendWindow = host.streamWindow;
    this.#recvAllowance = host.streamWindow;
    this.#recvWindow = host.streamWindow;
    if (headBytes > 0 && host.budget.tryCharge(headBytes)) this.#charged += headBytes;
    if (initiator === 'local') {
      this.#responseHead = new Promise<ResponseHead>((resolve, reject) => {
        this.#resolveHead = resolve;
        this.#rejectHead = reject;
      });
      this.#responseHead.catch(() => {});
    }
  }

  /**
   * The received body as a stream (the response on the opener, the request on the acceptor). Made on first use: the
   * gateway takes a response through `attach` and the agent gives one through `writeChunk`, and two stream objects per
   * tunnel stream on each side were a measurable part of a tunnelled request (docs/performance.md, "Tunnel,
   * session 4").
   */
  get readable(): Readable {
    return this.#readable ?? this.#makeReadable();
  }

  /** The body this side sends, as a stream. Made on first use (see `readable`). */
  get writable(): Writable {
    return this.#writable ?? this.#makeWritable();
  }

  #makeReadable(): Readable {
    const readable = new Readable({
      highWaterMark: 64 * 1024,
      read: () => {
        this.#releaseConsumed();
        this.#wantRead = true;
        this.#drainQueue();
      },
      destroy: (err, cb) => {
        if (!this.#closed && !readable.readableEnded) {
          // An error fails the whole exchange; a plain destroy only gives up on this body (see the class comment).
          if (err) this.#localReset(err);
          else this.#abandonRead();
        }
        cb(err);
      },
    });
    this.#readable = readable;
    // A reset is a normal event on a tunnel. Consumers observe it through pipeline()/'close'/`error`; an unobserved
    // 'error' must never take the whole process (and every other stream) down.
    readable.on('error', () => {});
    readable.once('end', () => {
      this.#releaseConsumed();
      this.#maybeComplete();
    });
    // Asked for only after the stream ended abnormally (or after its body went elsewhere): it must not wait forever.
    if (this.#closed || this.#sink || this.#readAbandoned) readable.destroy(this.error);
    return readable;
  }

  #makeWritable(): Writable {
    const writable = new Writable({
      // No buffer of its own: a producer that respects backpressure hands over one chunk at a time, and that chunk
      // (#pending) is charged to the budget. A 64 KiB buffer here would hold uncounted bytes on every stalled stream.
      highWaterMark: 0,
      write: (chunk: Buffer, _enc, cb) => this.#write(chunk, cb),
      final: (cb) => this.#final(cb),
      destroy: (err, cb) => {
        if (!this.#closed && !writable.writableFinished) this.#localReset(err);
        cb(err);
      },
    });
    this.#writable = writable;
    writable.on('error', () => {});
    writable.once('finish', () => this.#maybeComplete());
    if (this.#closed || this.#chunksEnded) writable.destroy(this.error);
    return writable;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Opener side: resolves with the peer's response head, rejects with TunnelStreamError on reset before it. */
  get responseHead(): Promise<ResponseHead> {
    if (!this.#responseHead) return Promise.reject(new Error('responseHead exists only on streams opened locally'));
    return this.#responseHead;
  }

  /** Acceptor side: sends the response head; must come before any response body. */
  respond(head: ResponseHead): void {
    if (this.initiator !== 'remote') throw new Error('only the accepting side responds');
    if (this.#responded) throw new Error('response head already sent');
    if (this.#closed) return;
    this.#responded = true;
    this.#host.sendControl(encodeJSONFrame(FrameType.RESPONSE_HEAD, this.id, head));
  }

  /** Aborts the exchange in both directions and tells the peer why. */
  reset(code: string, reason?: string): void {
    if (this.#closed) return;
    this.#sendReset({ code, reason });
    this.#teardown(new TunnelStreamError(code, reason, false));
  }

  /**
   * Takes the received body without `readable`: each DATA payload goes to `sink.chunk` as it arrives, in the call that
   * read it from the socket, with no stream buffer and no 'data' event a tick later; what `readable` cost per chunk was
   * much of the cluster's work on a tunnelled download (docs/performance.md, "Tunnel, session 4"). Payloads that
   * arrive while the sink is full wait in the stream's queue, charged to the budget as before, and credit goes back as
   * the sink takes them. Only before anything was read from `readable`: a body is read one way or the other.
   */
  attach(sink: TunnelBodySink): TunnelBodySource {
    if (this.#sink || this.#wantRead || this.#pushedBytes > 0) throw new Error('the body is already being read');
    this.#sink = sink;
    if (this.#pushedEnd && !this.#closed) {
      // An empty body whose END came first: `readable` was handed its end, which nobody will read now.
      this.#sinkSettled = true;
      this.#sinkEnded = true;
      sink.end();
      this.#maybeComplete();
    } else if (this.#closed) {
      this.#sinkSettled = true;
      sink.fail(this.error ?? new TunnelStreamError('CANCEL', 'stream closed'));
    } else if (this.#readAbandoned) {
      this.#sinkSettled = true;
    } else {
      this.#drainQueue();
    }
    return new AttachedBody(this);
  }

  /**
   * Takes the received body and drops it: for a request that has none (its END must still be taken for the stream to
   * complete) or whose body nobody wants. Credit goes back as for any body.
   */
  discard(): void {
    this.attach(DISCARD);
  }

  /** AttachedBody#resume. */
  _resumeSink(): void {
    if (!this.#sinkPaused) return;
    this.#sinkPaused = false;
    this.#drainQueue();
  }

  /** AttachedBody#stop / #detach: a body the sink has not seen end is given up, as destroying `readable` would. */
  _dropSink(): void {
    if (this.#sinkSettled || this.#closed) return;
    this.#sinkSettled = true;
    this.#abandonRead();
  }

  /**
   * Sends body bytes without `writable` (the agent hands over undici's chunks as its parser makes them): frames as
   * much as credit and the connection allow now and keeps the rest pending, charged to the budget. Returns false when
   * some of it is pending: the producer pauses until `onwritable`. One chunk at a time, as `writable` (highWaterMark
   * 0) takes them. Also false when the stream is closed; its 'close' says why.
   */
  writeChunk(chunk: Buffer): boolean {
    if (this.#closed) return false;
    if (this.#pending) throw new Error('writeChunk() while a chunk is pending: wait for onwritable');
    if (this.initiator === 'remote' && !this.#responded) throw new Error('respond() must be called before writing the body');
    if (!this.#host.budget.tryCharge(chunk.length)) {
      this.#localReset(new TunnelStreamError('OVER_BUDGET', 'the tunnel buffer budget is exhausted'));
      return false;
    }
    this.#charged += chunk.length;
    this.#pending = { buf: chunk, cb: noop };
    this._flush();
    if (!this.#pending) return true;
    this.#chunkBlocked = true;
    return false;
  }

  /** Ends a body given with writeChunk(): END goes out right after the last chunk, in the same socket write. */
  endChunks(): void {
    if (this.#closed || this.#chunksEnded) return;
    if (this.initiator === 'remote' && !this.#responded) throw new Error('respond() must be called before ending');
    if (this.#pending) {
      this.#endAfterChunk = true;
      return;
    }
    this.#chunksEnded = true;
    this.#host.sendControl(encodeFrame(FrameType.END, this.id));
    this.#maybeComplete();
  }

  #chunkSent(): void {
    this.#chunkBlocked = false;
    if (this.#endAfterChunk) {
      this.#endAfterChunk = false;
      this.endChunks();
    } else {
      this.onwritable?.();
    }
  }

  // ---- frames from the peer (called by the multiplexer) ----

  _onResponseHead(head: ResponseHead): void {
    if (this.initiator !== 'local' || !this.#resolveHead) {
      this.reset('PROTOCOL', 'unexpected RESPONSE_HEAD');
      return;
    }
    const resolve = this.#resolveHead;
    this.#resolveHead = undefined;
    this.#rejectHead = undefined;
    resolve(head);
  }

  _onData(payload: Buffer): void {
    if (this.#closed) return;
    if (this.#remoteEnded) {
      this.reset('PROTOCOL', 'DATA after END');
      return;
    }
    if (this.initiator === 'local' && this.#resolveHead) {
      this.reset('PROTOCOL', 'DATA before RESPONSE_HEAD');
      return;
    }
    if (payload.length > this.#recvAllowance) {
      this.reset('FLOW_CONTROL', `peer sent ${payload.length} bytes with only ${this.#recvAllowance} of credit`);
      return;
    }
    this.#recvAllowance -= payload.length;
    this.bytesIn += payload.length;
    if (this.#readAbandoned || this.#readable?.destroyed) {
      // Nobody reads this body any more: drop the bytes but return their credit, or the peer could never finish.
      this.#unacked += payload.length;
      this.#returnCredit();
      return;
    }
    if (this.#sink && !this.#sinkPaused && !this.#queue.length) {
      // Straight to the attached consumer: nothing is held, so nothing is charged.
      this.#unacked += payload.length;
      this.#readSinceGrowth += payload.length;
      if (!this.#sink.chunk(payload)) this.#sinkPaused = true;
      this.#returnCredit();
      return;
    }
    if (!this.#host.budget.tryCharge(payload.length)) {
      // The peer stayed within its credit; this side is out of memory for tunnels. Dropping this exchange frees what
      // it held; the others go on.
      this.reset('OVER_BUDGET', 'the tunnel buffer budget is exhausted');
      return;
    }
    this.#charged += payload.length;
    this.#recvCharged += payload.length;
    this.#queue.push(payload);
    this.#queuedBytes += payload.length;
    this.#drainQueue();
  }

  _onEnd(): void {
    if (this.#closed || this.#remoteEnded) return;
    this.#remoteEnded = true;
    if (this.#readAbandoned) this.#maybeComplete();
    else this.#drainQueue();
  }

  _onReset(msg: ResetMessage): void {
    if (this.#closed) return;
    this.#teardown(new TunnelStreamError(msg.code, msg.reason, true));
  }

  _onWindow(increment: number): void {
    if (this.#closed) return;
    this.#sendWindow += increment;
    if (this.#sendWindow > 2 ** 31) {
      this.reset('FLOW_CONTROL', 'window overflow');
      return;
    }
    this._flush();
  }

  /** The connection is gone: fail everything without sending frames. */
  _onConnectionLost(reason: string): void {
    if (this.#closed) return;
    this.#teardown(new TunnelStreamError('CONNECTION_LOST', reason, false));
  }

  /** Sends as much of the pending write as credit and the connection allow; called again on WINDOW or drain. */
  _flush(): void {
    const p = this.#pending;
    if (!p || this.#closed) return;
    while (p.buf.length > 0) {
      if (this.#sendWindow <= 0) return; // resumes on WINDOW
      if (this.#host.blocked) {
        this.#host.waitDrain(this); // resumes on transport drain
        return;
      }
      const n = Math.min(p.buf.length, this.#sendWindow, this.#host.maxDataFrame);
      this.#host.sendData(this.id, p.buf.subarray(0, n));
      this.#sendWindow -= n;
      this.bytesOut += n;
      p.buf = p.buf.subarray(n);
      this.#release(n);
    }
    this.#pending = undefined;
    p.cb();
    if (this.#chunkBlocked) this.#chunkSent();
  }

  // ---- internals ----

  #write(chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.#closed) return cb(this.error ?? new TunnelStreamError('CANCEL', 'stream closed'));
    if (this.initiator === 'remote' && !this.#responded) return cb(new Error('respond() must be called before writing the body'));
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    if (!this.#host.budget.tryCharge(buf.length)) return cb(new TunnelStreamError('OVER_BUDGET', 'the tunnel buffer budget is exhausted'));
    this.#charged += buf.length;
    this.#pending = { buf, cb };
    this._flush();
  }

  #final(cb: (err?: Error | null) => void): void {
    if (this.#closed) return cb(this.error ?? new TunnelStreamError('CANCEL', 'stream closed'));
    if (this.initiator === 'remote' && !this.#responded) return cb(new Error('respond() must be called before ending'));
    this.#host.sendControl(encodeFrame(FrameType.END, this.id));
    cb();
  }

  #drainQueue(): void {
    if (this.#sink) return this.#deliver(this.#sink);
    const readable = this.#readable;
    // No reader yet: the queue (charged, within the window) waits for one, as it would in a Readable's buffer.
    if (!readable || readable.destroyed) return;
    while (this.#wantRead && this.#queue.length) {
      const b = this.#queue.shift()!;
      this.#queuedBytes -= b.length;
      this.#unacked += b.length;
      this.#readSinceGrowth += b.length;
      this.#pushedBytes += b.length;
      this.#wantRead = readable.push(b);
    }
    if (this.#remoteEnded && !this.#queue.length && !this.#pushedEnd) {
      this.#pushedEnd = true;
      readable.push(null);
    }
    this.#returnCredit();
  }

  /** #drainQueue for an attached sink. */
  #deliver(sink: TunnelBodySink): void {
    if (this.#sinkSettled || this.#closed) return;
    while (!this.#sinkPaused && this.#queue.length) {
      const b = this.#queue.shift()!;
      this.#queuedBytes -= b.length;
      this.#unacked += b.length;
      this.#readSinceGrowth += b.length;
      // Handed over: the consumer holds it now (the client's socket buffer), as a Readable's reader would.
      const n = Math.min(b.length, this.#recvCharged);
      this.#recvCharged -= n;
      this.#release(n);
      if (!sink.chunk(b)) this.#sinkPaused = true;
      if (this.#sinkSettled || this.#closed) return; // the consumer gave up inside chunk()
    }
    if (this.#remoteEnded && !this.#queue.length) {
      this.#sinkSettled = true;
      this.#sinkEnded = true;
      sink.end();
      this.#maybeComplete();
      return;
    }
    this.#returnCredit();
  }

  /**
   * Returns credit in batches (a quarter window) to keep WINDOW frames rare; never after END (nothing more comes).
   *
   * The window grows (doubles, up to MAX_GROWN_WINDOW) once a whole window was read while the reader kept asking for
   * more: a bulk body whose reader is faster than the round trip of a WINDOW frame. With the fixed 256 KiB a 10 MB
   * response waited for credit on every hop of a busy machine (docs/performance.md, "Tunnel, session 3"). Growth is
   * granted as extra credit, which every peer of protocol v1 accepts, and only while the budget has room for it; what
   * is received is still charged byte by byte, so the budgets bound a grown stream as before.
   */
  #returnCredit(): void {
    if (this.#closed || this.#remoteEnded || this.#unacked < this.#recvWindow / 4) return;
    let grant = this.#unacked;
    if (this.#readSinceGrowth >= this.#recvWindow && (this.#sink ? !this.#sinkPaused : this.#wantRead) && this.#recvWindow < MAX_GROWN_WINDOW) {
      const extra = Math.min(this.#recvWindow, MAX_GROWN_WINDOW - this.#recvWindow);
      if (this.#host.budget.hasRoom(extra)) {
        this.#recvWindow += extra;
        grant += extra;
      }
      this.#readSinceGrowth = 0;
    }
    this.#recvAllowance += grant;
    this.#host.sendControl(encodeWindowFrame(this.id, grant));
    this.#unacked = 0;
  }

  /** Releases what the consumer has read out of `readable` since the last call (it is called from read()/'end'). */
  #releaseConsumed(): void {
    const consumed = this.#pushedBytes - (this.#readable?.readableLength ?? 0);
    if (consumed <= this.#consumedBytes) return;
    const n = Math.min(consumed - this.#consumedBytes, this.#recvCharged);
    this.#consumedBytes = consumed;
    this.#recvCharged -= n;
    this.#release(n);
  }

  #release(n: number): void {
    const k = Math.min(n, this.#charged);
    if (k <= 0) return;
    this.#charged -= k;
    this.#host.budget.release(k);
  }

  /** The window this side currently grants the peer (for tests and stats). */
  get receiveWindow(): number {
    return this.#recvWindow;
  }

  /** Bytes this stream holds against the budget (for tests and stats). */
  get chargedBytes(): number {
    return this.#charged;
  }

  /** `readable` was destroyed without an error before its end (see the class comment). */
  #abandonRead(): void {
    this.#readAbandoned = true;
    // Whatever was received and not read is dropped with the readable.
    this.#release(this.#recvCharged);
    this.#recvCharged = 0;
    // Bytes received but never handed over count as read: credited back like the rest.
    this.#unacked += this.#queuedBytes;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#returnCredit();
    this.#maybeComplete();
  }

  /** Bytes received but not yet handed to the reader (for tests and stats). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  #maybeComplete(): void {
    if (this.#closed || !(this.#writable?.writableFinished || this.#chunksEnded)) return;
    const readDone = this.#readable?.readableEnded || this.#sinkEnded || (this.#readAbandoned && this.#remoteEnded);
    if (!readDone) {
      // Our side is done and the opener does not want the rest of the response: tell the peer to stop. (The acceptor
      // waits for the peer's END instead: a RESET could still destroy the response it sent before it is read.)
      if (this.#readAbandoned && this.initiator === 'local') this.#localReset(undefined);
      return;
    }
    this.#closed = true;
    this.#release(this.#charged);
    this.#host.forget(this);
    this.emit('close');
  }

  #localReset(err: Error | null | undefined): void {
    const code = err instanceof TunnelStreamError ? err.code : err ? 'INTERNAL' : 'CANCEL';
    const reason = err instanceof TunnelStreamError ? err.reason : err?.message ?? 'stream abandoned';
    this.#sendReset({ code, reason });
    this.#teardown(new TunnelStreamError(code, reason, false));
  }

  #sendReset(msg: ResetMessage): void {
    if (this.#host.alive) this.#host.sendControl(encodeJSONFrame(FrameType.RESET, this.id, msg));
  }

  #teardown(err: TunnelStreamError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.error = err;
    this.#pending = undefined;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#release(this.#charged);
    this.#host.forget(this);
    if (this.#rejectHead) {
      const reject = this.#rejectHead;
      this.#resolveHead = undefined;
      this.#rejectHead = undefined;
      reject(err);
    }
    if (this.#sink && !this.#sinkSettled) {
      this.#sinkSettled = true;
      this.#sink.fail(err);
    }
    const r = this.#readable;
    const w = this.#writable;
    if (r && !r.destroyed) r.destroy(r.readableEnded || this.#sink ? undefined : err);
    if (w && !w.destroyed) w.destroy(w.writableFinished || this.#chunksEnded ? undefined : err);
    this.emit('close');
  }
}

function noop(): void {}

const DISCARD: TunnelBodySink = { chunk: () => true, end: noop, fail: noop };

/** The consumer's handle on an attached body: a class, so no closures per response. */
class AttachedBody implements TunnelBodySource {
  readonly #stream: TunnelStream;
  constructor(stream: TunnelStream) {
    this.#stream = stream;
  }
  resume(): void {
    this.#stream._resumeSink();
  }
  stop(): void {
    this.#stream._dropSink();
  }
  detach(): void {
    this.#stream._dropSink();
  }
}
