import { StringDecoder } from 'node:string_decoder';
import type { BodyMap } from '../gateway/context.js';

/** One SSE event as received: its raw text (terminator included) and its joined `data`. */
export interface SseEvent {
  raw: string;
  /** `data:` lines joined with "\n" (undefined when the event has none). */
  data?: string;
}

/** Rewrites an event's data, or returns undefined to pass the event through byte for byte. */
export type EventRewriter = (event: SseEvent) => string | undefined;

const KEEPALIVE = Buffer.from(': keep-alive\n\n');
/** An event ends at an empty line; line ends are \r\n, \n or \r (WHATWG SSE). */
const EVENT_END = /(?:\r\n|\n|\r)(?:\r\n|\n|\r)/;

function dataOf(raw: string): string | undefined {
  let data: string[] | undefined;
  for (const line of raw.split(/\r\n|\n|\r/)) {
    if (line === 'data' || line.startsWith('data:')) (data ??= []).push(line.slice(5).replace(/^ /, ''));
  }
  return data?.join('\n');
}

/**
 * Re-emits an event with new data: every non-data line (`event:`, `id:`, `retry:`, comments) is kept exactly
 * (resumption depends on ids), and the data goes out as one `data:` line (JSON has no raw newlines).
 */
export function withData(raw: string, data: string): string {
  const kept = raw.split(/\r\n|\n|\r/).filter((l) => l !== '' && l !== 'data' && !l.startsWith('data:'));
  return [...kept, `data: ${data}`].join('\n') + '\n\n';
}

/**
 * Splits an SSE body into events, synchronously: each complete event is handed to `rewrite` and returned at once
 * (never held back for a later one); a partial event waits only for its own end. The decoder is made with the
 * first chunk, so a stream that never sends costs nothing but this object.
 */
export class SseEventSplitter implements BodyMap {
  #decoder: StringDecoder | undefined;
  #buffer = '';

  constructor(private readonly rewrite?: EventRewriter, keepAliveMs = 0) {
    // When the upstream stays silent for `keepAliveMs`, a comment line is sent: legal anywhere between events,
    // ignored by every parser, and it carries no `id:`, so Last-Event-ID resumption is unaffected.
    if (keepAliveMs > 0) this.idle = { ms: keepAliveMs, chunk: KEEPALIVE };
  }

  readonly idle?: { ms: number; chunk: Buffer };

  map(chunk: Buffer): Buffer[] {
    this.#buffer += (this.#decoder ??= new StringDecoder('utf8')).write(chunk);
    return this.#events(false);
  }

  end(): Buffer[] {
    if (this.#decoder) this.#buffer += this.#decoder.end();
    return this.#events(true);
  }

  #events(final: boolean): Buffer[] {
    const out: Buffer[] = [];
    let m: RegExpExecArray | null;
    while ((m = EVENT_END.exec(this.#buffer))) {
      // A trailing "\r" may be the first half of "\r\n": wait for the next chunk to be sure.
      if (!final && m.index + m[0].length === this.#buffer.length && this.#buffer.endsWith('\r')) break;
      const raw = this.#buffer.slice(0, m.index + m[0].length);
      this.#buffer = this.#buffer.slice(raw.length);
      out.push(Buffer.from(this.rewrite?.({ raw, data: dataOf(raw) }) ?? raw));
    }
    if (final && this.#buffer) {
      out.push(Buffer.from(this.#buffer));
      this.#buffer = '';
    }
    return out;
  }
}

/**
 * The same splitting over an async body, for a reader that consumes events in a loop (a federation member's SSE
 * answer), with the same keep-alive comments while the body is idle.
 */
export async function* mapSseEvents(body: AsyncIterable<Buffer>, rewrite: EventRewriter | undefined, keepAliveMs: number): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  const splitter = new SseEventSplitter(rewrite);
  let next: Promise<IteratorResult<Buffer>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      next ??= it.next();
      let r: IteratorResult<Buffer> | 'idle';
      if (keepAliveMs > 0) {
        const idle = new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), keepAliveMs)));
        r = await Promise.race([next, idle]);
        clearTimeout(timer);
      } else {
        r = await next;
      }
      if (r === 'idle') {
        yield KEEPALIVE;
        continue;
      }
      next = undefined;
      if (r.done) break;
      yield* splitter.map(r.value);
    }
    yield* splitter.end();
  } finally {
    clearTimeout(timer);
    if (next) {
      // Stopped while a read is pending (during a keep-alive): an async iterator's return() would wait for that
      // read, maybe forever on an idle stream, so destroy the body instead; the pending read then rejects.
      next.catch(() => undefined);
      void it.return?.()?.catch(() => undefined);
      (body as { destroy?: () => void }).destroy?.();
    } else {
      await it.return?.().catch(() => undefined);
    }
  }
}
