import * as grpc from '@grpc/grpc-js';
import type { WireProcessingRequest, WireProcessingResponse } from './wire.js';

/** Why a stream stopped being usable. `closed` = the server ended the RPC with OK. */
export type StreamEnd =
  | { kind: 'closed' }
  | { kind: 'error'; reason: string }
  | { kind: 'timeout'; reason: string }
  | { kind: 'local'; reason: string };

/** How long a half-closed stream may linger before we cancel it, so servers that never finish can't leak calls. */
const HALF_CLOSE_GRACE_MS = 1000;

/**
 * One ExternalProcessor/Process call seen as "send one message, await exactly one reply",
 * which is the whole protocol in the NONE/BUFFERED body modes. Replies that arrive with nobody
 * waiting are queued so they are judged (as spurious) by the next receive, not dropped.
 */
export class ProcessStream {
  private readonly queue: WireProcessingResponse[] = [];
  private waiter?: { resolve: (m: WireProcessingResponse) => void; reject: (e: StreamEnd) => void; timer: NodeJS.Timeout };
  private endState?: StreamEnd;
  private halfClosed = false;

  constructor(private readonly call: grpc.ClientDuplexStream<WireProcessingRequest, WireProcessingResponse>) {
    call.on('data', (msg: WireProcessingResponse) => {
      const w = this.waiter;
      if (w) {
        this.waiter = undefined;
        clearTimeout(w.timer);
        w.resolve(msg);
      } else {
        this.queue.push(msg);
      }
    });
    // An 'error' listener must always exist: grpc-js emits one for every non-OK status
    // (including our own cancel), and an unhandled one would crash the gateway.
    call.on('error', (err: grpc.ServiceError) => {
      const name = grpc.status[err.code] ?? String(err.code);
      this.finish({ kind: 'error', reason: `gRPC ${name}: ${err.details || err.message}` });
    });
    call.on('end', () => this.finish({ kind: 'closed' }));
  }

  /** Set once the stream can no longer carry messages. */
  get ended(): StreamEnd | undefined {
    return this.endState;
  }

  send(msg: WireProcessingRequest): void {
    if (this.endState || this.halfClosed) return;
    this.call.write(msg);
  }

  /** The next reply, or rejects with a StreamEnd; a timeout cancels the call, as Envoy's message timer does. */
  receive(timeoutMs: number, configuredMs = timeoutMs): Promise<WireProcessingResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.endState) return Promise.reject(this.endState);
    if (this.waiter) return Promise.reject<WireProcessingResponse>({ kind: 'local', reason: 'concurrent receive on one ExtProc stream' });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.abort({ kind: 'timeout', reason: `no reply within messageTimeout ${configuredMs} ms` });
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Ends the stream on our side with a reason and cancels the RPC. */
  abort(end: StreamEnd): void {
    this.finish(end);
    this.call.cancel();
  }

  /** Half-close like Envoy; cancel after a grace period if the server never completes the RPC. */
  halfClose(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    if (this.endState) {
      this.call.cancel();
      return;
    }
    this.call.end();
    const t = setTimeout(() => this.abort({ kind: 'local', reason: 'stream closed' }), HALF_CLOSE_GRACE_MS);
    t.unref();
    this.call.on('status', () => clearTimeout(t));
  }

  private finish(end: StreamEnd): void {
    if (this.endState) return;
    this.endState = end;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(end);
    }
  }
}
