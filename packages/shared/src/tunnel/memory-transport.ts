import {
  TRANSPORT_HIGH_WATER_MARK, TRANSPORT_LOW_WATER_MARK, type TransportCloseInfo, type TunnelTransport,
} from './transport.js';

export interface LinkedPairOptions {
  highWaterMark?: number;
  lowWaterMark?: number;
  /** Bytes delivered per event-loop turn, to emulate a link of limited speed. Default: everything queued. */
  bytesPerTick?: number;
}

/**
 * Two in-memory transports wired to each other, for unit tests of the multiplexer without sockets.
 * Delivery is asynchronous (setImmediate) and the queue counts as `bufferedAmount`, so backpressure behaves
 * like a real socket's.
 */
export function createLinkedTransportPair(opts: LinkedPairOptions = {}): [MemoryTransport, MemoryTransport] {
  const a = new MemoryTransport(opts);
  const b = new MemoryTransport(opts);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export class MemoryTransport implements TunnelTransport {
  onmessage?: (frame: Buffer) => void;
  onerror?: (error: Error) => void;
  onclose?: (info: TransportCloseInfo) => void;
  ondrain?: () => void;
  peer?: MemoryTransport;
  /** Total bytes this side has sent (for tests). */
  bytesSent = 0;

  readonly #high: number;
  readonly #low: number;
  readonly #perTick: number;
  #queue: Buffer[] = [];
  #queued = 0;
  #scheduled = false;
  #needDrain = false;
  #closed = false;

  constructor(opts: LinkedPairOptions) {
    this.#high = opts.highWaterMark ?? TRANSPORT_HIGH_WATER_MARK;
    this.#low = opts.lowWaterMark ?? TRANSPORT_LOW_WATER_MARK;
    this.#perTick = opts.bytesPerTick ?? Infinity;
  }

  get bufferedAmount(): number {
    return this.#queued;
  }

  start(): Promise<void> {
    return this.#closed ? Promise.reject(new Error('transport closed')) : Promise.resolve();
  }

  send(frame: Buffer): boolean {
    if (this.#closed) return false;
    this.#queue.push(frame);
    this.#queued += frame.length;
    this.bytesSent += frame.length;
    this.#schedule();
    if (this.#queued >= this.#high) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed) return;
    // Frames already queued are still delivered first, as a WebSocket close handshake would.
    setImmediate(() => {
      this.#flushAll();
      this.#end({ code, reason });
      if (this.peer) this.peer.#end({ code, reason });
    });
  }

  /** Drops the link without delivering anything queued (a crashed peer). */
  kill(): void {
    this.#queue = [];
    this.#queued = 0;
    this.#end({ code: 1006, reason: 'killed' });
    if (this.peer) this.peer.#end({ code: 1006, reason: 'killed' });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#deliver(this.#perTick);
      if (this.#queue.length) this.#schedule();
    });
  }

  #flushAll(): void {
    this.#deliver(Infinity);
  }

  #deliver(budget: number): void {
    let sent = 0;
    while (this.#queue.length && sent < budget && !this.#closed) {
      const f = this.#queue.shift()!;
      this.#queued -= f.length;
      sent += f.length;
      this.peer?.onmessage?.(f);
    }
    if (this.#needDrain && this.#queued <= this.#low && !this.#closed) {
      this.#needDrain = false;
      this.ondrain?.();
    }
  }

  #end(info: TransportCloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onclose?.(info);
  }
}
