import { StringDecoder } from 'node:string_decoder';

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
 * Maps an upstream SSE body event by event: each complete event is handed to `rewrite` and sent on at once
 * (never held back for a later one); a partial event waits only for its own end. When the upstream stays
 * silent for `keepAliveMs`, a comment line is sent — legal anywhere between events, ignored by every parser,
 * and it carries no `id:`, so Last-Event-ID resumption is unaffected.
 */
export async function* mapSseEvents(body: AsyncIterable<Buffer>, rewrite: EventRewriter | undefined, keepAliveMs: number): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  const decoder = new StringDecoder('utf8');
  let buffer = '';
  let next: Promise<IteratorResult<Buffer>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = function* (final: boolean): Generator<Buffer> {
    let m: RegExpExecArray | null;
    while ((m = EVENT_END.exec(buffer))) {
      // A trailing "\r" may be the first half of "\r\n": wait for the next chunk to be sure.
      if (!final && m.index + m[0].length === buffer.length && buffer.endsWith('\r')) break;
      const raw = buffer.slice(0, m.index + m[0].length);
      buffer = buffer.slice(raw.length);
      const out = rewrite?.({ raw, data: dataOf(raw) });
      yield Buffer.from(out ?? raw);
    }
    if (final && buffer) {
      yield Buffer.from(buffer);
      buffer = '';
    }
  };
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
      buffer += decoder.write(r.value);
      yield* flush(false);
    }
    buffer += decoder.end();
    yield* flush(true);
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
