import { encodeFrame, type FrameType } from './frames.js';
import {
  TRANSPORT_HIGH_WATER_MARK, TRANSPORT_LOW_WATER_MARK, type TransportCloseInfo, type TunnelTransport,
} from './transport.js';
import { maskedFrameBytes, maskedTunnelFrame, type MaskFunction } from './ws-frame.js';

/**
 * The part of a `ws` WebSocket this transport uses. Declared structurally so `shared` needs no `ws` dependency:
 * the cluster (server side) and the agent (client side) pass their own `ws` sockets in.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Buffer, cb?: (err?: Error) => void): void;
  ping(data?: unknown, mask?: boolean, cb?: (err: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** Extensions negotiated in the handshake (ws's `extensions`); the tunnel asks for none. */
  readonly extensions?: string;
  /**
   * ws's underlying socket (its own name): corked for a tick so that many small frames leave in one write, and
   * written to directly with frames built by maskedTunnelFrame (see WebSocketTransport#sendFrame).
   */
  readonly _socket?: { cork(): void; uncork(): void; write(data: Buffer, cb?: (err?: Error | null) => void): boolean } | null;
}

const CONNECTING = 0;

/**
 * Frame buffers the client transport recycles: big enough for a full DATA frame (MAX_DATA_FRAME payload, the tunnel
 * header and the largest WebSocket header); frames under POOLED_MIN come from Node's own small-buffer pool.
 */
const POOLED_FRAME_BYTES = 64 * 1024 + 32;
const POOLED_MIN = 4 * 1024;
/** Free frame buffers kept per transport (4 MiB at most). */
const MAX_FREE_FRAMES = 64;
const OPEN = 1;

export interface WebSocketTransportOptions {
  /** How often to ping the peer. Default 10 s. */
  heartbeatIntervalMs?: number;
  /** The peer is declared dead when nothing (pong or frame) arrived for this long. Default 30 s. */
  heartbeatTimeoutMs?: number;
  highWaterMark?: number;
  lowWaterMark?: number;
  /**
   * The client side (which masks, RFC 6455 §5.3): a native mask (bufferutil's), with which DATA frames are built and
   * masked in one pass (maskedTunnelFrame) instead of being encoded and then copied again by ws to mask them.
   */
  mask?: MaskFunction;
}

/** A TunnelTransport over one `ws` WebSocket, with ping/pong dead-peer detection. */
export class WebSocketTransport implements TunnelTransport {
  onmessage?: (frame: Buffer) => void;
  onerror?: (error: Error) => void;
  onclose?: (info: TransportCloseInfo) => void;
  ondrain?: () => void;

  readonly #ws: WebSocketLike;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #high: number;
  readonly #low: number;
  readonly #mask?: MaskFunction;
  /** Recycled frame buffers, and those written but not yet handed to the kernel (in write order). */
  #freeFrames: Buffer[] = [];
  #inFlight: Buffer[] = [];
  #lastSeen = Date.now();
  #timer?: NodeJS.Timeout;
  #needDrain = false;
  #closed = false;
  #closeOverride?: TransportCloseInfo;
  #corked = false;

  constructor(ws: WebSocketLike, opts: WebSocketTransportOptions = {}) {
    this.#ws = ws;
    this.#intervalMs = opts.heartbeatIntervalMs ?? 10_000;
    this.#timeoutMs = opts.heartbeatTimeoutMs ?? 30_000;
    this.#high = opts.highWaterMark ?? TRANSPORT_HIGH_WATER_MARK;
    this.#low = opts.lowWaterMark ?? TRANSPORT_LOW_WATER_MARK;
    this.#mask = opts.mask;
    ws.on('message', (data: unknown, isBinary: boolean) => {
      this.#lastSeen = Date.now();
      if (!isBinary || !Buffer.isBuffer(data)) {
        this.onerror?.(new Error('tunnel frames must be binary WebSocket messages'));
        this.close(1003, 'binary frames only');
        return;
      }
      this.onmessage?.(data);
    });
    ws.on('pong', () => (this.#lastSeen = Date.now()));
    ws.on('ping', () => (this.#lastSeen = Date.now()));
    ws.on('error', (err: Error) => this.onerror?.(err));
    ws.on('close', (code: number, reason: Buffer) => this.#onClose({ code, reason: reason?.toString() ?? '' }));
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  start(): Promise<void> {
    if (this.#ws.readyState === OPEN) {
      this.#startHeartbeat();
      return Promise.resolve();
    }
    if (this.#ws.readyState !== CONNECTING) return Promise.reject(new Error('WebSocket is closed'));
    return new Promise((resolve, reject) => {
      let settled = false;
      this.#ws.on('open', () => {
        if (settled) return;
        settled = true;
        this.#lastSeen = Date.now();
        this.#startHeartbeat();
        resolve();
      });
      const fail = (err?: Error) => {
        if (settled) return;
        settled = true;
        reject(err ?? new Error('WebSocket closed before it opened'));
      };
      this.#ws.on('error', fail);
      this.#ws.on('close', () => fail());
    });
  }

  send(frame: Buffer): boolean {
    if (this.#closed || this.#ws.readyState !== OPEN) return false;
    this.#coalesce();
    this.#ws.send(frame, this.#afterSend);
    if (this.#ws.bufferedAmount >= this.#high) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * One tunnel frame from its parts. With a mask function, built and masked in one buffer (maskedTunnelFrame) and
   * written to ws's socket directly: that is all ws.send would do with it (no extension is negotiated, so its sender
   * never queues; ping and close frames go to the same socket in the order they are made), minus the copy it masks
   * into. `bufferedAmount` still counts it (ws reads it from the socket). Without one, `send` as before.
   */
  sendFrame(type: FrameType, streamId: number, payload: Buffer): boolean {
    const socket = this.#ws._socket;
    if (!this.#mask || !socket || this.#ws.extensions) return this.send(encodeFrame(type, streamId, payload));
    if (this.#closed || this.#ws.readyState !== OPEN) return false;
    this.#coalesce();
    const size = maskedFrameBytes(payload.length);
    if (size >= POOLED_MIN && size <= POOLED_FRAME_BYTES) {
      const buf = this.#freeFrames.pop() ?? Buffer.allocUnsafeSlow(POOLED_FRAME_BYTES);
      this.#inFlight.push(buf);
      socket.write(maskedTunnelFrame(type, streamId, payload, this.#mask, buf), this.#afterPooledSend);
    } else {
      socket.write(maskedTunnelFrame(type, streamId, payload, this.#mask), this.#afterSend);
    }
    if (this.#ws.bufferedAmount >= this.#high) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /**
   * A recycled frame buffer was written (the kernel has the bytes: Node's write callbacks come in write order, and
   * libuv no longer reads the buffer). Allocating a fresh 64 KiB buffer per DATA frame made V8 run a full mark-compact
   * about once per 10 MB sent, for external memory pressure (docs/performance.md, "Tunnel, session 4"). A failed write
   * does not give its buffer back: the socket is going down.
   */
  readonly #afterPooledSend = (err?: Error | null): void => {
    const buf = this.#inFlight.shift();
    if (!err && buf && this.#freeFrames.length < MAX_FREE_FRAMES) this.#freeFrames.push(buf);
    this.#afterSend(err);
  };

  /** One callback for every frame (not a closure per frame): reports the drain once the buffer is low again. */
  readonly #afterSend = (err?: Error | null): void => {
    if (err) return; // the socket is going down; 'close' reports it
    if (this.#needDrain && this.#ws.bufferedAmount <= this.#low) {
      this.#needDrain = false;
      this.ondrain?.();
    }
  };

  /**
   * The frames of one event-loop turn leave in one socket write: the socket stays corked until the turn's check phase
   * (setImmediate), when Node flushes everything queued with one writev. A turn handles every socket that was ready
   * (many upstream responses on the agent, many gateway requests on the cluster), so at 50 concurrent requests one
   * write carries the frames of several exchanges, where uncorking on the next tick wrote once per socket read
   * (docs/performance.md, "Tunnel, session 4"). The delay is the rest of the turn's I/O callbacks, never a timer.
   * ws corks and uncorks around each message itself; corking nests, so its uncork does not flush early.
   */
  #coalesce(): void {
    const socket = this.#ws._socket;
    if (this.#corked || !socket) return;
    this.#corked = true;
    socket.cork();
    setImmediate(this.#uncork);
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#ws._socket?.uncork();
  };

  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    if (this.#ws.readyState === OPEN || this.#ws.readyState === CONNECTING) {
      this.#ws.close(code, reason);
      // A peer that never answers the closing handshake must not keep the socket (and us) alive.
      setTimeout(() => this.#ws.terminate(), 2000).unref();
    }
  }

  #startHeartbeat(): void {
    if (this.#timer || this.#intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      if (Date.now() - this.#lastSeen > this.#timeoutMs) {
        this.#closeOverride = { code: 1006, reason: `heartbeat timeout: no answer for ${this.#timeoutMs} ms` };
        this.#ws.terminate();
        return;
      }
      try {
        this.#ws.ping();
      } catch {
        // not open any more; 'close' follows
      }
    }, this.#intervalMs);
    this.#timer.unref();
  }

  #onClose(info: TransportCloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.onclose?.(this.#closeOverride ?? info);
  }
}
