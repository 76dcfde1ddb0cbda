import { parseJsonBytes, parseJsonText } from '@octelium-ts/shared';
import { StringDecoder } from 'node:string_decoder';
import type { ServerResponse } from 'node:http';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayStage } from '../gateway/deps.js';

function isJsonRpcResponse(m: unknown): boolean {
  return !!m && typeof m === 'object' && !Array.isArray(m) && (m as { jsonrpc?: unknown }).jsonrpc === '2.0' && ('result' in m || 'error' in m);
}

/**
 * Incremental SSE reader keeping the JSON-RPC responses (result or error) carried in `data:` lines.
 * It holds at most one partial line/event, and never more than `max` bytes of it: a bigger event is
 * skipped, the stream itself is never held back.
 */
export class SseJsonRpcCollector {
  readonly messages: unknown[] = [];
  #line = '';
  #data: string[] = [];
  #dataBytes = 0;
  #skipping = false;
  #captured = 0;
  #full = false;

  constructor(private readonly max: number) {}

  push(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.#onLine(this.#line + text.slice(start, nl));
      this.#line = '';
      start = nl + 1;
    }
    if (start < text.length) {
      this.#line += text.slice(start);
      if (this.#line.length > this.max) {
        this.#line = '';
        this.#skipping = true; // a line bigger than the cap: drop this event
      }
    }
  }

  #onLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') return this.#dispatch();
    if (this.#skipping || this.#full || !line.startsWith('data:')) return;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    this.#dataBytes += value.length;
    if (this.#dataBytes > this.max) {
      this.#skipping = true;
      this.#data = [];
      return;
    }
    this.#data.push(value);
  }

  #dispatch(): void {
    const data = this.#data.join('\n');
    const skipped = this.#skipping;
    this.#data = [];
    this.#dataBytes = 0;
    this.#skipping = false;
    if (skipped || this.#full || !data || (data[0] !== '{' && data[0] !== '[')) return;
    let msg: unknown;
    try {
      msg = parseJsonText(data);
    } catch {
      return;
    }
    const found = Array.isArray(msg) ? msg.filter(isJsonRpcResponse) : isJsonRpcResponse(msg) ? [msg] : [];
    if (!found.length) return;
    if (this.#captured + data.length > this.max) {
      this.#full = true;
      return;
    }
    this.#captured += data.length;
    this.messages.push(...found);
  }
}

type Write = (chunk: unknown, ...rest: unknown[]) => boolean;
type End = (chunk?: unknown, ...rest: unknown[]) => ServerResponse;

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return undefined;
}

/**
 * Tees what the gateway writes to the client into `ctx.responseBodyMap`, without holding anything back:
 * every chunk is passed on as it is, a copy of at most `max` bytes is kept. JSON bodies are parsed when
 * the response ends; SSE events are parsed as they pass, and their JSON-RPC responses recorded at once
 * (so a stream the client abandons still has what was answered so far).
 */
class ResponseTap {
  #mode: 'json' | 'sse' | 'off' | undefined;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #decoder = new StringDecoder('utf8');
  #sse: SseJsonRpcCollector | undefined;

  constructor(private readonly ctx: GatewayContext, private readonly max: number) {}

  #detect(): 'json' | 'sse' | 'off' {
    const type = (this.ctx.responseContentType ?? '').toLowerCase();
    if (type.startsWith('text/event-stream')) {
      this.#sse = new SseJsonRpcCollector(this.max);
      return 'sse';
    }
    return /^application\/([\w.+-]+\+)?json\b/.test(type) ? 'json' : 'off';
  }

  observe(chunk: Buffer): void {
    this.#mode ??= this.#detect();
    if (this.#mode === 'json') {
      this.#bytes += chunk.length;
      if (this.#bytes > this.max) {
        this.#mode = 'off'; // too big to audit in full; a partial JSON body would be misleading
        this.#chunks = [];
        return;
      }
      this.#chunks.push(Buffer.from(chunk)); // a copy: the writer may reuse its buffer
    } else if (this.#mode === 'sse') {
      const sse = this.#sse!;
      const before = sse.messages.length;
      sse.push(this.#decoder.write(chunk));
      if (sse.messages.length !== before) this.ctx.responseBodyMap = sse.messages.length === 1 ? sse.messages[0] : [...sse.messages];
    }
  }

  end(): void {
    if (this.#mode === 'sse') {
      this.observe(Buffer.from('\n\n')); // an event the upstream did not terminate
    } else if (this.#mode === 'json' && this.#chunks.length) {
      try {
        this.ctx.responseBodyMap = parseJsonBytes(Buffer.concat(this.#chunks));
      } catch {
        /* declared JSON, is not (or nests past MAX_JSON_DEPTH, which the AccessLog must never walk): nothing to record */
      }
      this.#chunks = [];
    }
    this.#mode = 'off';
  }
}

function tap(res: ServerResponse, t: ResponseTap): void {
  const write = res.write as unknown as Write;
  const end = res.end as unknown as End;
  (res as unknown as { write: Write }).write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    const b = toBuffer(chunk, rest[0]);
    if (b?.length) t.observe(b);
    return write.call(this, chunk, ...rest);
  };
  (res as unknown as { end: End }).end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') {
      const b = toBuffer(chunk, rest[0]);
      if (b?.length) t.observe(b);
    }
    t.end();
    return end.call(this, chunk, ...rest);
  };
}

/**
 * An afterAuthorize stage: by then the effective config (dynamicConfig included) is known. When the
 * Service captures response bodies, the response is tapped; otherwise this costs one property read.
 */
export function responseCaptureStage(opts: { defaultOn: boolean; maxBytes: number }): GatewayStage {
  return function captureResponse(ctx: GatewayContext): void {
    if (!(ctx.config?.http?.visibility?.captureResponseBody ?? opts.defaultOn)) return;
    tap(ctx.res, new ResponseTap(ctx, opts.maxBytes));
  };
}
