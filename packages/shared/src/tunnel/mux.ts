import { TunnelProtocolError } from './errors.js';
import {
  CONTROL_SCHEMAS, DEFAULT_STREAM_WINDOW, FrameType, MAX_DATA_FRAME,
  decodeFrame, decodeJSONPayload, decodeWindowIncrement, encodeFrame, encodeJSONFrame,
  type ControlFrameType, type Frame, type GoAwayMessage, type RequestHead,
} from './frames.js';
import type { z } from 'zod';
import { DEFAULT_CONNECTION_BUFFER_BYTES, TunnelBudget } from './budget.js';
import { TunnelStream, type StreamHost } from './stream.js';
import { decodeRequestHead, decodeReset, decodeResponseHead } from './stream-heads.js';
import type { TransportCloseInfo, TunnelTransport } from './transport.js';

export type ControlMessage = {
  [T in ControlFrameType]: { type: T; message: z.output<(typeof CONTROL_SCHEMAS)[T]> };
}[ControlFrameType];

/**
 * Default limit of open streams per connection. Sized for ~10 000 idle SSE streams on one agent: an idle stream costs
 * a few KiB (two empty stream objects and a map entry; buffers are allocated only while data moves).
 */
export const DEFAULT_MAX_STREAMS = 16_384;

export interface TunnelMuxOptions {
  /** The dialing side (agent) is 'client' and opens odd stream ids; the hub is 'server' and opens even ones. */
  role: 'client' | 'server';
  /** Per-stream receive window; must equal the peer's (protocol v1 uses DEFAULT_STREAM_WINDOW). */
  streamWindow?: number;
  maxDataFrame?: number;
  /**
   * Open streams (either side's) beyond which a new stream from the peer is refused with RESET TOO_MANY_STREAMS.
   * Default DEFAULT_MAX_STREAMS.
   */
  maxStreams?: number;
  /**
   * What this connection's streams may hold in memory (received and unread, accepted and unsent, heads). A new stream
   * needs room for a full window; a stream whose data does not fit is reset with OVER_BUDGET. Default: a budget of
   * DEFAULT_CONNECTION_BUFFER_BYTES of its own. The hub passes one per agent under its cluster-wide one.
   */
  budget?: TunnelBudget;
}

/**
 * Multiplexes TunnelStreams over one TunnelTransport: frame routing, stream ids, connection-level backpressure
 * (DATA waits while the transport is above its high-water mark; streams resume round-robin on drain), and
 * connection teardown. Connection-level control messages go to `oncontrol`; the handshake is the caller's job.
 */
export class TunnelMux {
  oncontrol?: (msg: ControlMessage) => void;
  /** A stream the peer opened (REQUEST_HEAD received). Leaving it unhandled leaks it: reset or respond. */
  onstream?: (stream: TunnelStream) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (err: Error) => void;

  readonly transport: TunnelTransport;
  readonly role: 'client' | 'server';
  /** Streams opened by either side since the connection started. */
  totalStreams = 0;

  readonly #streams = new Map<number, TunnelStream>();
  readonly #host: StreamHost;
  readonly #maxStreams: number;
  readonly #budget: TunnelBudget;
  #nextId: number;
  #lastPeerId = 0;
  #blocked = false;
  #drainWaiters = new Set<TunnelStream>();
  #closed = false;
  #closeInfo?: TransportCloseInfo;

  constructor(transport: TunnelTransport, opts: TunnelMuxOptions) {
    this.transport = transport;
    this.role = opts.role;
    this.#nextId = opts.role === 'client' ? 1 : 2;
    this.#maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    const streamWindow = opts.streamWindow ?? DEFAULT_STREAM_WINDOW;
    this.#budget = opts.budget ?? new TunnelBudget(DEFAULT_CONNECTION_BUFFER_BYTES);
    if (this.#budget.limit < streamWindow) throw new RangeError(`a tunnel budget (${this.#budget.limit}) must hold at least one stream window (${streamWindow})`);
    const maxDataFrame = opts.maxDataFrame ?? MAX_DATA_FRAME;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const mux = this;
    this.#host = {
      streamWindow,
      maxDataFrame,
      budget: this.#budget,
      sendControl: (frame) => {
        if (mux.#closed) return;
        if (!mux.transport.send(frame)) mux.#blocked = true;
      },
      sendData: (streamId, payload) => {
        if (mux.#closed) return false;
        const t = mux.transport;
        const ok = t.sendFrame ? t.sendFrame(FrameType.DATA, streamId, payload) : t.send(encodeFrame(FrameType.DATA, streamId, payload));
        if (!ok) mux.#blocked = true;
        return ok;
      },
      get blocked() {
        return mux.#blocked;
      },
      waitDrain: (s) => mux.#drainWaiters.add(s),
      forget: (s) => {
        if (mux.#streams.get(s.id) === s) mux.#streams.delete(s.id);
        mux.#drainWaiters.delete(s);
      },
      get alive() {
        return !mux.#closed;
      },
    };
    transport.onmessage = (data) => this.#onMessage(data);
    transport.ondrain = () => this.#onDrain();
    transport.onerror = (err) => this.#report(err);
    transport.onclose = (info) => this.#onTransportClose(info);
  }

  /** Streams currently open. */
  get activeStreams(): number {
    return this.#streams.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes this connection's streams hold against its budget. */
  get bufferedBytes(): number {
    return this.#budget.used;
  }

  /** Whether the budget has room for one more stream (a full window): opening one beyond it is refused (503). */
  canOpenStream(): boolean {
    return !this.#closed && this.#budget.hasRoom(this.#host.streamWindow);
  }

  get closeInfo(): TransportCloseInfo | undefined {
    return this.#closeInfo;
  }

  start(): Promise<void> {
    return this.transport.start();
  }

  sendControl(type: ControlFrameType, message: unknown): void {
    this.#host.sendControl(encodeJSONFrame(type, 0, message));
  }

  /** Opens a stream by sending its request head. */
  openStream(head: RequestHead): TunnelStream {
    if (this.#closed) throw new TunnelProtocolError('tunnel connection is closed');
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = new TunnelStream(this.#host, id, 'local', head);
    this.#streams.set(id, stream);
    this.totalStreams++;
    this.#host.sendControl(encodeJSONFrame(FrameType.REQUEST_HEAD, id, head));
    return stream;
  }

  /** Sends GOAWAY (when given) and closes; every open stream fails with CONNECTION_LOST. */
  close(code = 1000, reason = '', goAway?: GoAwayMessage): void {
    if (this.#closed) return;
    if (goAway) this.sendControl(FrameType.GOAWAY, goAway);
    this.#failAll(reason || 'tunnel closed');
    this.transport.close(code, reason);
  }

  #onMessage(data: Buffer): void {
    if (this.#closed) return;
    try {
      const frame = decodeFrame(data);
      if (frame.streamId === 0) this.#onControl(frame);
      else this.#onStreamFrame(frame);
    } catch (err) {
      if (err instanceof TunnelProtocolError) {
        this.#report(err);
        this.close(1002, 'protocol error', { code: 'PROTOCOL_ERROR', reason: err.message });
        return;
      }
      // A bug in a handler (ours or the caller's). Thrown from here it would escape through the socket's 'data' event
      // and end the process; this connection's state is no longer trustworthy, so it goes, and nothing else does.
      this.#report(err instanceof Error ? err : new Error(String(err)));
      this.close(1011, 'internal error', { code: 'INTERNAL_ERROR', reason: 'the peer failed to handle a frame' });
    }
  }

  /** `onerror` is the caller's code: it must not be able to throw into the socket either. */
  #report(err: Error): void {
    try {
      this.onerror?.(err);
    } catch {
      // nothing left to tell
    }
  }

  #onControl(frame: Frame): void {
    const type = frame.type as ControlFrameType;
    const message = decodeJSONPayload(frame, CONTROL_SCHEMAS[type] as z.ZodType<unknown>);
    this.oncontrol?.({ type, message } as ControlMessage);
  }

  #onStreamFrame(frame: Frame): void {
    const id = frame.streamId;
    if (frame.type === FrameType.REQUEST_HEAD) {
      const peerParity = this.role === 'client' ? 0 : 1;
      if (id % 2 !== peerParity || id <= this.#lastPeerId) throw new TunnelProtocolError(`invalid new stream id ${id}`);
      this.#lastPeerId = id;
      const head = decodeRequestHead(frame);
      // Room for its head and a full window (the peer may send that much at once), or it is refused.
      const fits = this.#budget.hasRoom(this.#host.streamWindow + frame.payload.length);
      const stream = new TunnelStream(this.#host, id, 'remote', head, fits ? frame.payload.length : 0);
      if (this.#streams.size >= this.#maxStreams || !this.onstream) {
        stream.reset('TOO_MANY_STREAMS', this.onstream ? `more than ${this.#maxStreams} open streams` : 'not accepting streams');
        return;
      }
      if (!fits) {
        stream.reset('OVER_BUDGET', 'the tunnel buffer budget is exhausted; retry later');
        return;
      }
      this.#streams.set(id, stream);
      this.totalStreams++;
      try {
        this.onstream(stream);
      } catch (err) {
        // The handler failed on this one stream: it alone is refused, the connection carries on.
        this.#report(err instanceof Error ? err : new Error(String(err)));
        stream.reset('INTERNAL', 'the stream handler failed');
      }
      return;
    }
    const stream = this.#streams.get(id);
    // Frames for a stream that already ended locally (e.g. crossing a RESET) are expected and dropped.
    switch (frame.type) {
      case FrameType.RESPONSE_HEAD: {
        const head = decodeResponseHead(frame);
        stream?._onResponseHead(head);
        return;
      }
      case FrameType.DATA:
        stream?._onData(frame.payload);
        return;
      case FrameType.END:
        if (frame.payload.length) throw new TunnelProtocolError('END carries no payload');
        stream?._onEnd();
        return;
      case FrameType.RESET:
        stream?._onReset(decodeReset(frame));
        return;
      case FrameType.WINDOW: {
        const inc = decodeWindowIncrement(frame);
        stream?._onWindow(inc);
        return;
      }
      default:
        throw new TunnelProtocolError(`unexpected frame type 0x${frame.type.toString(16)} on a stream`);
    }
  }

  #onDrain(): void {
    this.#blocked = false;
    // Round-robin: each waiting stream gets a turn; whoever finds the transport blocked again re-queues itself.
    const waiters = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const s of waiters) {
      if (this.#blocked) this.#drainWaiters.add(s);
      else s._flush();
    }
  }

  #onTransportClose(info: TransportCloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    // Called from the socket's 'close' event: a throwing stream listener or onclose must not escape into it.
    try {
      this.#failAll(info.reason || `connection closed (${info.code})`);
      this.onclose?.(info);
    } catch (err) {
      this.#report(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #failAll(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams.values()]) s._onConnectionLost(reason);
    this.#streams.clear();
    this.#drainWaiters.clear();
  }
}
