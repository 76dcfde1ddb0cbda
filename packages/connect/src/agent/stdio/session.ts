import { randomUUID } from 'node:crypto';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { StdioServeSpec } from './command-line.js';
import { StdioProcess } from './stdio-process.js';

export interface StdioLimits {
  /** Processes (= MCP sessions) one Service may run at once; past it initialize gets 503. Default 4. */
  maxProcesses: number;
  /** Largest JSON-RPC message in either direction. Default 4 MiB. */
  maxMessageBytes: number;
  /** A session with no request for this long is ended and its process killed. Default 10 min. */
  idleTimeoutMs: number;
}

export const DEFAULT_STDIO_LIMITS: StdioLimits = { maxProcesses: 4, maxMessageBytes: 4 * 1024 * 1024, idleTimeoutMs: 10 * 60_000 };

type Log = (msg: string, fields?: Record<string, unknown>) => void;

const isRequest = (m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId; method: string } => 'method' in m && 'id' in m && m.id !== undefined;
const isResponse = (m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } => !('method' in m) && 'id' in m;

/**
 * One MCP session over stdio: one process, bridged to streamable HTTP by the SDK's own server transport (session
 * ids, POST with JSON or SSE answers, the GET stream, DELETE, protocol-version checks). The one thing stdio does
 * not carry is which request a server message belongs to, so the bridge restores it: progress by its token,
 * responses by id, anything else (logging, sampling, elicitation) on the stream of the latest request still
 * running, else on the GET stream.
 */
export class StdioSession {
  readonly transport: WebStandardStreamableHTTPServerTransport;
  readonly process: StdioProcess;
  /** Requests sent to the process and not answered yet, oldest first. */
  readonly #inflight = new Set<RequestId>();
  readonly #progress = new Map<string | number, RequestId>();
  #idle?: NodeJS.Timeout;
  #closed = false;
  id?: string;

  constructor(spec: StdioServeSpec, private readonly limits: StdioLimits, private readonly log: Log, private readonly onend: (s: StdioSession) => void) {
    this.transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        this.id = id;
      },
      // DELETE ends the session, and with it the process.
      onsessionclosed: () => this.close('the client ended the session'),
    });
    this.transport.onmessage = (m) => this.#toProcess(m);
    this.process = new StdioProcess(spec, {
      maxMessageBytes: limits.maxMessageBytes, log,
      onmessage: (m) => this.#fromProcess(m),
      onclose: (why, protocolError) => this.#processGone(why, protocolError),
    });
    log('stdio server started', { service: spec.service, pid: this.process.pid, command: spec.command });
    this.touch();
  }

  touch(): void {
    clearTimeout(this.#idle);
    if (this.#closed) return;
    this.#idle = setTimeout(() => this.close(`idle for ${Math.round(this.limits.idleTimeoutMs / 1000)} s`), this.limits.idleTimeoutMs);
    this.#idle.unref();
  }

  #toProcess(m: JSONRPCMessage): void {
    if (isRequest(m)) {
      this.#inflight.add(m.id);
      const token = ((m as { params?: unknown }).params as { _meta?: { progressToken?: unknown } } | undefined)?._meta?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') this.#progress.set(token, m.id);
    }
    this.process.send(m);
  }

  #fromProcess(m: JSONRPCMessage): void {
    let related: RequestId | undefined;
    if (isResponse(m)) {
      this.#inflight.delete(m.id);
      for (const [t, id] of this.#progress) if (id === m.id) this.#progress.delete(t);
    } else if ('method' in m && m.method === 'notifications/progress') {
      const token = ((m as { params?: unknown }).params as { progressToken?: unknown } | undefined)?.progressToken;
      related = typeof token === 'string' || typeof token === 'number' ? this.#progress.get(token) : undefined;
    } else {
      related = [...this.#inflight].pop();
    }
    this.transport.send(m, related === undefined ? undefined : { relatedRequestId: related }).catch((err: Error) => {
      // The stream it belonged to is gone (client disconnected): nothing to deliver it on.
      this.log('stdio bridge: message not delivered', { service: this.process.spec.service, error: err.message });
    });
  }

  /** The process ended: every request still waiting gets a JSON-RPC error saying why, then the session ends. */
  #processGone(why: string, protocolError: boolean): void {
    const message = protocolError ? `stdio MCP server ${why}; it was stopped` : `stdio MCP server ${why}`;
    const pending = [...this.#inflight];
    this.#inflight.clear();
    void Promise.all(pending.map((id) => this.transport.send({ jsonrpc: '2.0', id, error: { code: -32603, message } }).catch(() => undefined)))
      .finally(() => this.close(why));
  }

  close(why: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idle);
    this.log('stdio server session ended', { service: this.process.spec.service, pid: this.process.pid, session: this.id, reason: why });
    this.process.kill();
    void this.transport.close().catch(() => undefined);
    this.onend(this);
  }

  get closed(): boolean {
    return this.#closed;
  }
}
