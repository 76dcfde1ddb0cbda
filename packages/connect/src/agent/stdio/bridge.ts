import { Readable } from 'node:stream';
import type { TunnelStream } from '@octelium-ts/shared';
import type { StdioServeSpec } from './command-line.js';
import { StdioSession, type StdioLimits } from './session.js';

type Log = (msg: string, fields?: Record<string, unknown>) => void;

function jsonError(stream: TunnelStream, status: number, message: string, id: unknown = null, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: typeof id === 'string' || typeof id === 'number' ? id : null, error: { code: status === 404 ? -32001 : -32000, message } }));
  stream.respond({ status, headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers } });
  stream.writable.end(body);
}

async function readBody(stream: TunnelStream, cap: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream.readable) {
    size += (c as Buffer).length;
    if (size > cap) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * `--serve-stdio SVC=COMMAND`: serves the Service's streamable-HTTP MCP endpoint (any path) from stdio server
 * processes, one per MCP session. Per session, not shared: a stdio server is written for one client (one
 * initialize, one set of subscriptions, log level and roots), so sharing one process would mix callers' state.
 */
export class StdioBridge {
  readonly #sessions = new Map<string, StdioSession>();
  /** Sessions whose process started but whose initialize has not been answered yet (count against the limit). */
  readonly #starting = new Set<StdioSession>();

  constructor(readonly spec: StdioServeSpec, private readonly limits: StdioLimits, private readonly log: Log) {}

  get processes(): number {
    return this.#sessions.size + this.#starting.size;
  }

  async serve(stream: TunnelStream): Promise<void> {
    const head = stream.requestHead;
    const method = head.method.toUpperCase();
    let body: Buffer | undefined;
    if (head.hasBody) {
      body = await readBody(stream, this.limits.maxMessageBytes);
      if (!body) return jsonError(stream, 413, `request body larger than ${this.limits.maxMessageBytes} bytes`, null, { connection: 'close' });
    } else stream.readable.resume();
    let parsed: unknown;
    if (body?.length) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return jsonError(stream, 400, 'Parse error: the body is not JSON');
      }
    }
    const sidHeader = head.headers['mcp-session-id'];
    const sid = Array.isArray(sidHeader) ? sidHeader[0] : sidHeader;
    let session = sid ? this.#sessions.get(sid) : undefined;
    if (sid && !session) return jsonError(stream, 404, 'Session not found');
    const id = (parsed as { id?: unknown } | undefined)?.id;
    if (!session) {
      const isInit = method === 'POST' && typeof parsed === 'object' && parsed !== null && (parsed as { method?: unknown }).method === 'initialize';
      if (!isInit) return jsonError(stream, 400, 'Bad Request: Mcp-Session-Id header is required', id);
      if (this.processes >= this.limits.maxProcesses) {
        this.log('stdio bridge: session refused, process limit reached', { service: this.spec.service, max: this.limits.maxProcesses });
        return jsonError(stream, 503, `Service "${this.spec.service}" already runs ${this.limits.maxProcesses} stdio server processes (--stdio-max-processes)`, id, { 'retry-after': '5' });
      }
      session = new StdioSession(this.spec, this.limits, this.log, (s) => this.#ended(s));
      this.#starting.add(session);
    }
    session.touch();
    const headers = new Headers();
    for (const [k, v] of Object.entries(head.headers)) for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
    const request = new Request(`http://stdio.invalid${head.path}`, { method, headers, body: method === 'GET' || method === 'HEAD' || !body ? undefined : new Uint8Array(body) });
    const res = await session.transport.handleRequest(request, { parsedBody: parsed });
    if (this.#starting.delete(session)) {
      if (session.id && !session.closed) this.#sessions.set(session.id, session);
      else session.close('initialize failed');
    }
    if (stream.closed) {
      await res.body?.cancel().catch(() => undefined);
      return;
    }
    stream.respond({ status: res.status, headers: Object.fromEntries(res.headers) });
    if (!res.body) return void stream.writable.end();
    const out = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    stream.once('close', () => out.destroy());
    out.on('error', () => undefined);
    out.pipe(stream.writable);
  }

  #ended(s: StdioSession): void {
    this.#starting.delete(s);
    if (s.id && this.#sessions.get(s.id) === s) this.#sessions.delete(s.id);
  }

  /** Agent exit: every process tree is killed. */
  closeAll(): void {
    for (const s of [...this.#sessions.values(), ...this.#starting]) s.close('the agent is stopping');
  }
}
