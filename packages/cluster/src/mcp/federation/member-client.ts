import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { parseJsonText } from '@octelium-ts/shared';
import { mapSseEvents } from '../sse.js';
import { isObject, type JsonRpcMessage } from '../jsonrpc.js';
import { HOP_HEADER } from './internal-hop.js';

/** Largest JSON (non-SSE) response or single SSE event read from a member. */
const MAX_MESSAGE = 16 * 1024 * 1024;
/** How often a POST stream the member cut is resumed with Last-Event-ID before giving up. */
const MAX_RESUMES = 5;
const MAX_RETRY_MS = 5_000;

export interface Exchange {
  /** The member's HTTP status (a refusal by the member's gateway pipeline is a 4xx with a JSON-RPC error body). */
  status: number;
  messages: AsyncGenerator<JsonRpcMessage>;
}

export interface HopOptions { grant: string; signal?: AbortSignal }

interface SseField { id?: string; retry?: number; data?: string }

function fieldsOf(raw: string): SseField {
  const out: SseField = {};
  const data: string[] = [];
  for (const line of raw.split(/\r\n|\n|\r/)) {
    const i = line.indexOf(':');
    const name = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (name === 'data') data.push(value);
    else if (name === 'id' && !value.includes('\0')) out.id = value;
    else if (name === 'retry' && /^\d+$/.test(value)) out.retry = Number(value);
  }
  if (data.length) out.data = data.join('\n');
  return out;
}

function parseMessages(text: string): JsonRpcMessage[] {
  let v: unknown;
  try {
    v = parseJsonText(text);
  } catch {
    return [];
  }
  const all = Array.isArray(v) ? v : [v];
  return all.filter(isObject) as JsonRpcMessage[];
}

async function readCapped(body: Readable, cap: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += (c as Buffer).length;
    if (size > cap) {
      body.destroy();
      throw new Error(`member response larger than ${cap} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A streamable-HTTP MCP client for one member session, speaking to the member through the gateway's own
 * listener (see internal-hop.ts). Written out rather than using the SDK client: the federation relays raw
 * JSON-RPC messages, and must know which POST stream each message arrived on (progress, logging and
 * server→client requests belong to the downstream stream of the request that caused them).
 */
export class MemberClient {
  sessionId?: string;
  protocolVersion?: string;

  constructor(
    readonly member: string,
    private readonly o: { origin: string; path: string; dispatcher: Dispatcher; userAgent?: string },
  ) {}

  #headers(h: HopOptions, extra: Record<string, string> = {}): Record<string, string> {
    return {
      [HOP_HEADER]: h.grant,
      accept: 'application/json, text/event-stream',
      ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
      ...(this.protocolVersion ? { 'mcp-protocol-version': this.protocolVersion } : {}),
      ...(this.o.userAgent ? { 'user-agent': this.o.userAgent } : {}),
      ...extra,
    };
  }

  #request(method: 'POST' | 'GET' | 'DELETE', h: HopOptions, body?: string, extra?: Record<string, string>) {
    return this.o.dispatcher.request({
      origin: this.o.origin, path: this.o.path, method,
      headers: this.#headers(h, { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...extra }),
      body, signal: h.signal, headersTimeout: 30_000, bodyTimeout: 0,
    });
  }

  /**
   * POSTs one message. The messages the member sends back for it (one JSON response, or an SSE stream of
   * notifications, server requests and finally the response) are yielded as they arrive; a stream the member
   * closes before the response (SEP-1699 polling) is resumed with GET + Last-Event-ID.
   */
  async exchange(msg: JsonRpcMessage, h: HopOptions): Promise<Exchange> {
    const r = await this.#request('POST', h, JSON.stringify(msg));
    const sid = r.headers['mcp-session-id'];
    if (typeof sid === 'string' && !this.sessionId && r.statusCode < 300) this.sessionId = sid;
    const type = String(r.headers['content-type'] ?? '');
    const self = this;
    async function* messages(): AsyncGenerator<JsonRpcMessage> {
      if (r.statusCode === 202 || r.statusCode === 204) return void (await r.body.dump());
      if (!type.startsWith('text/event-stream')) {
        const text = await readCapped(r.body, r.statusCode >= 300 ? 64 * 1024 : MAX_MESSAGE);
        yield* parseMessages(text);
        return;
      }
      yield* self.#stream(r.body, msg.id, h);
    }
    return { status: r.statusCode, messages: messages() };
  }

  async *#stream(body: Readable, awaitedId: unknown, h: HopOptions): AsyncGenerator<JsonRpcMessage> {
    let lastId: string | undefined;
    let retry = 1000;
    for (let resumes = 0; ; resumes++) {
      let answered = false;
      for await (const chunk of mapSseEvents(body, undefined, 0)) {
        if (chunk.length > MAX_MESSAGE) throw new Error(`member SSE event larger than ${MAX_MESSAGE} bytes`);
        const f = fieldsOf(chunk.toString('utf8'));
        if (f.id !== undefined) lastId = f.id;
        if (f.retry !== undefined) retry = Math.min(f.retry, MAX_RETRY_MS);
        if (f.data === undefined || !f.data.trim()) continue;
        for (const m of parseMessages(f.data)) {
          if (awaitedId !== undefined && m.id === awaitedId && m.method === undefined) answered = true;
          yield m;
        }
      }
      if (answered || awaitedId === undefined || lastId === undefined || resumes >= MAX_RESUMES || h.signal?.aborted) return;
      await new Promise((res) => setTimeout(res, retry));
      const r = await this.#request('GET', h, undefined, { 'last-event-id': lastId });
      if (r.statusCode !== 200 || !String(r.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        await r.body.dump();
        return;
      }
      body = r.body;
    }
  }

  /** POSTs a notification or a response (no answer expected beyond 202). */
  async send(msg: JsonRpcMessage, h: HopOptions): Promise<number> {
    const r = await this.#request('POST', h, JSON.stringify(msg));
    await r.body.dump();
    return r.statusCode;
  }

  /** The member's standalone GET stream (server-initiated messages); ends when the member or `h.signal` ends it. */
  async *listen(h: HopOptions): AsyncGenerator<JsonRpcMessage> {
    const r = await this.#request('GET', h);
    if (r.statusCode !== 200 || !String(r.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      await r.body.dump();
      return;
    }
    yield* this.#stream(r.body, undefined, h);
  }

  /** Ends the member session (DELETE); failures are the member's business. */
  async close(h: HopOptions): Promise<void> {
    if (!this.sessionId) return;
    try {
      const r = await this.#request('DELETE', h);
      await r.body.dump();
    } catch {
      /* the member is gone already */
    }
  }
}
