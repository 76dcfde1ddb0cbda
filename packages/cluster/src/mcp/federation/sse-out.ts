import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { JsonRpcMessage } from '../jsonrpc.js';

/**
 * A downstream SSE body the federation writes JSON-RPC messages to, one event each, as they arrive from the
 * members. The gateway's proxy streams it like any upstream SSE body (keep-alives, list filtering per event).
 */
export class SseOut {
  readonly body = new PassThrough();
  #ended = false;

  get ended(): boolean {
    return this.#ended || this.body.destroyed;
  }

  /** Writes one event; waits while the client is slow, so a fast member cannot fill memory. */
  async send(msg: JsonRpcMessage): Promise<void> {
    if (this.ended) return;
    if (!this.body.write(`event: message\ndata: ${JSON.stringify(msg)}\n\n`)) {
      await once(this.body, 'drain').catch(() => undefined);
    }
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.body.end();
  }
}
