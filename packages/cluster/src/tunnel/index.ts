import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { pipeline, type Duplex, type Readable } from 'node:stream';
import { Agent as UndiciAgent } from 'undici';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  DEFAULT_CONNECTION_BUFFER_BYTES, DEFAULT_TOTAL_BUFFER_BYTES, FrameType, MAX_FRAME_BYTES, OcteliumError,
  TUNNEL_PROTOCOL_VERSIONS, TunnelBudget, TunnelMux, TunnelStreamError, WebSocketTransport,
  canonicalServiceName, endToEndHeaders, normalizeUpstreamURL,
  type ControlMessage, type HelloMessage, type Resource, type TunnelStream,
} from '@octelium-ts/shared';
import type { Principal } from '../auth/principal.js';
import { AgentConnection } from './agent-conn.js';
import { replayPublished } from './publish-replay.js';
import { decideServe, upstreamsServedBy } from './services.js';
import { rejectUpgrade, upgradeToken } from './upgrade.js';

export { upstreamsServedBy, decideServe, decideService } from './services.js';

export interface TunnelHubOptions {
  authenticate(token: string): Principal | undefined;
  /** Canonical Service name: 'svc' (default ns) or 'svc.ns'. */
  getService(name: string): Resource | undefined;
  /** Every Service; needed for `--serve-all` to name the Services at connect time (they are accepted lazily without it). */
  listServices?(): Resource[];
  /**
   * Base URL of the cluster's own HTTP listener, used for published (agent → cluster) streams: the hub replays them
   * as a loopback HTTP request to `${selfURL()}/svc/<svc>/<path>` carrying the agent's Session token in
   * X-Octelium-Auth, so the normal gateway pipeline authorizes them as the agent's User.
   */
  selfURL(): string;
  /** How long dispatch waits for an agent to (re)appear before 503. Default 300 ms. */
  reconnectGraceMs?: number;
  /** WebSocket ping period and dead-peer limit. Defaults 10 s / 30 s. */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /** An agent that has not sent HELLO within this time is dropped. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * How often connected agents' Session tokens are checked again with `authenticate`; an agent whose Session was
   * revoked, expired or now belongs to someone else is disconnected (GOAWAY SESSION_ENDED). Default 30 s; 0: never.
   */
  reauthenticateMs?: number;
  /**
   * Streams that may be open at once on one agent's connection; a stream the agent opens beyond it (publish) is
   * refused with TOO_MANY_STREAMS. The agent has its own limit for the serve streams it accepts. Default
   * DEFAULT_MAX_STREAMS (16 384).
   */
  maxStreams?: number;
  /**
   * Bytes one agent's streams may hold in the cluster's memory: data received from it and not yet read, data for it
   * not yet sent, heads. A stream that needs more is reset (OVER_BUDGET); a new stream needs room for a full window,
   * else a request for it gets 503 and a stream it publishes is refused. Default 256 MiB.
   */
  maxBufferedBytesPerAgent?: number;
  /** The same for all agents together. Default 1 GiB. */
  maxBufferedBytes?: number;
  /** Tunnel connections one User may hold at once; the next upgrade gets 429. Default 16. */
  maxConnectionsPerUser?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The limits a cluster can set on its hub (ClusterOptions.tunnel). */
export type TunnelLimits = Pick<TunnelHubOptions, 'maxStreams' | 'maxBufferedBytesPerAgent' | 'maxBufferedBytes' | 'maxConnectionsPerUser'>;

export interface TunnelRequest {
  service: string;
  upstreamURL: string;
  method: string;
  /** Path + query as sent upstream. */
  path: string;
  headers: Record<string, string | string[]>;
  /** A stream is forwarded as it arrives; a Buffer/string is a body the gateway already buffered. */
  body?: Readable | NodeJS.ReadableStream | Uint8Array | string;
  signal?: AbortSignal;
}

export interface TunnelResponse { statusCode: number; headers: Record<string, string | string[]>; body: Readable }

export interface TunnelAgentInfo {
  id: string;
  user: string;
  services: string[];
  connectedAt: string;
  streams: number;
  /** Bytes its streams hold against its budget. */
  bufferedBytes: number;
  publish: string[];
  version: number;
}

// Application close codes (4000–4999) the agent can tell apart from network failures.
export const CLOSE_UNSUPPORTED_VERSION = 4002;
export const CLOSE_HANDSHAKE_FAILED = 4003;
export const CLOSE_SESSION_ENDED = 4001;

export const DEFAULT_MAX_CONNECTIONS_PER_USER = 16;

function defaultLog(msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
}

/**
 * The cluster end of `octelium connect`: accepts agents on `GET /api/v1/connect`, decides which Services each may
 * serve, routes gateway requests to them (`dispatch`) and replays what they publish through the gateway.
 */
export class TunnelHub {
  readonly #opts: TunnelHubOptions;
  readonly #log: (msg: string, fields?: Record<string, unknown>) => void;
  readonly #wss: WebSocketServer;
  readonly #agents = new Map<string, AgentConnection>();
  readonly #waiters = new Set<() => void>();
  readonly #loopback: UndiciAgent;
  readonly #reauthTimer?: NodeJS.Timeout;
  readonly #budget: TunnelBudget;
  /** Open tunnel sockets per User, counted from the upgrade until the socket closes. */
  readonly #connections = new Map<string, number>();
  #rr = 0;
  #closed = false;

  constructor(opts: TunnelHubOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? defaultLog;
    this.#budget = new TunnelBudget(opts.maxBufferedBytes ?? DEFAULT_TOTAL_BUFFER_BYTES);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
    // Published streams may be long-lived SSE; the gateway they go through applies the Service's own timeouts.
    this.#loopback = new UndiciAgent({ bodyTimeout: 0, headersTimeout: 0 });
    const every = opts.reauthenticateMs ?? 30_000;
    if (every > 0) {
      this.#reauthTimer = setInterval(() => this.#reauthenticate(), every);
      this.#reauthTimer.unref();
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node's HTTP server drops its own 'error' listener from an upgraded socket: from here on an ECONNRESET with no
    // listener would be an uncaught exception that ends the cluster. ws adds its own listener only later.
    socket.on('error', () => socket.destroy());
    try {
      this.#upgrade(req, socket, head);
    } catch (err) {
      this.#log('tunnel: upgrade failed', { error: (err as Error).message });
      rejectUpgrade(socket, new OcteliumError('INTERNAL', 'the tunnel upgrade failed'));
    }
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closed) return rejectUpgrade(socket, new OcteliumError('UNREACHABLE', 'cluster is shutting down'));
    const token = upgradeToken(req);
    let principal: Principal | undefined;
    try {
      principal = token ? this.#opts.authenticate(token) : undefined;
    } catch (err) {
      this.#log('tunnel: authentication failed', { error: (err as Error).message });
    }
    if (!token || !principal) {
      rejectUpgrade(socket, new OcteliumError('UNAUTHENTICATED', token ? 'invalid or expired Session token' : 'the tunnel requires a Session: Authorization: Bearer <token>'));
      return;
    }
    const p = principal;
    const user = p.user.metadata.name;
    const open = this.#connections.get(user) ?? 0;
    const cap = this.#opts.maxConnectionsPerUser ?? DEFAULT_MAX_CONNECTIONS_PER_USER;
    if (open >= cap) {
      this.#log('tunnel: refused a connection over the per-user limit', { user, open, limit: cap });
      rejectUpgrade(socket, new OcteliumError('RATE_LIMITED', `user ${user} already has ${open} tunnel connections, the limit; close one (octelium connect) or retry later`, { user, limit: cap }));
      return;
    }
    this.#connections.set(user, open + 1);
    socket.once('close', () => {
      const n = (this.#connections.get(user) ?? 1) - 1;
      if (n > 0) this.#connections.set(user, n);
      else this.#connections.delete(user);
    });
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, p, token));
  }

  isServing(userName: string, service: string): boolean {
    const name = canonicalServiceName(service);
    for (const c of this.#agents.values()) if (c.alive && c.user === userName && c.accepted.has(name)) return true;
    return false;
  }

  async dispatch(userName: string, req: TunnelRequest): Promise<TunnelResponse> {
    const service = canonicalServiceName(req.service);
    let svc: Resource | undefined;
    try {
      svc = this.#opts.getService(service);
    } catch {
      svc = undefined;
    }
    const upstreams = svc ? upstreamsServedBy(svc, userName) : [];
    if (!upstreams.length) {
      throw new OcteliumError('UPSTREAM_FAILED', `Service ${service} is not served by user ${userName} through octelium connect`, { service, user: userName });
    }
    let target: string;
    try {
      target = normalizeUpstreamURL(req.upstreamURL);
    } catch {
      target = '';
    }
    if (!upstreams.includes(target)) {
      throw new OcteliumError('UPSTREAM_FAILED', `upstream ${req.upstreamURL} is not an upstream of Service ${service} for user ${userName}`, { service, user: userName });
    }
    const deadline = Date.now() + (this.#opts.reconnectGraceMs ?? 300);
    for (;;) {
      if (req.signal?.aborted) throw req.signal.reason ?? new Error('aborted');
      const conn = this.#pick(userName, service, upstreams);
      if (conn === 'full') {
        throw new OcteliumError('UNREACHABLE',
          `the tunnel to user ${userName} is over its memory budget (slow clients or a slow agent); retry later`,
          { service, user: userName });
      }
      if (conn) return this.#send(conn, service, target, req);
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) {
        throw new OcteliumError('UPSTREAM_NOT_CONNECTED',
          `Service ${service} is served by user ${userName} through \`octelium connect\`, and no agent of that user is connected`,
          { service, user: userName });
      }
      await this.#waitForAgent(left, req.signal);
    }
  }

  agents(): TunnelAgentInfo[] {
    return [...this.#agents.values()].filter((c) => c.ready).map((c) => ({
      id: c.id,
      user: c.user,
      services: [...c.accepted.keys()].sort(),
      connectedAt: c.connectedAt.toISOString(),
      streams: c.mux.activeStreams,
      bufferedBytes: c.mux.bufferedBytes,
      publish: c.publish,
      version: c.version,
    }));
  }

  /** Bytes all agents' streams hold, and the cluster-wide budget. */
  buffers(): { used: number; limit: number } {
    return { used: this.#budget.used, limit: this.#budget.limit };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reauthTimer) clearInterval(this.#reauthTimer);
    for (const w of [...this.#waiters]) w();
    const closing = [...this.#agents.values()].map((c) => new Promise<void>((resolve) => {
      if (c.mux.closed && c.mux.closeInfo) return resolve();
      const prev = c.mux.onclose;
      c.mux.onclose = (info) => {
        prev?.(info);
        resolve();
      };
      c.mux.close(1001, 'cluster shutting down', { code: 'SHUTDOWN', reason: 'cluster shutting down' });
      setTimeout(resolve, 1000).unref();
    }));
    await Promise.all(closing);
    this.#agents.clear();
    await this.#loopback.close().catch(() => {});
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  // ---- connection lifecycle ----

  #accept(ws: WebSocket, principal: Principal, token: string): void {
    const hb = this.#opts.heartbeat ?? {};
    const transport = new WebSocketTransport(ws, { heartbeatIntervalMs: hb.intervalMs, heartbeatTimeoutMs: hb.timeoutMs });
    const mux = new TunnelMux(transport, {
      role: 'server',
      maxStreams: this.#opts.maxStreams,
      budget: new TunnelBudget(this.#opts.maxBufferedBytesPerAgent ?? DEFAULT_CONNECTION_BUFFER_BYTES, this.#budget),
    });
    const conn = new AgentConnection(randomBytes(6).toString('hex'), principal, token, mux);
    this.#agents.set(conn.id, conn);
    const timer = setTimeout(() => {
      if (conn.ready) return;
      this.#log('tunnel: agent did not complete the handshake', { agent: conn.id, user: conn.user });
      mux.close(CLOSE_HANDSHAKE_FAILED, 'handshake timeout', { code: 'HANDSHAKE_TIMEOUT', reason: 'no HELLO received' });
    }, this.#opts.handshakeTimeoutMs ?? 10_000);
    timer.unref();
    // Already open (ws upgraded it synchronously); a socket that closed in between never fires 'close' for us.
    transport.start().catch(() => {
      clearTimeout(timer);
      this.#agents.delete(conn.id);
    });

    mux.oncontrol = (m) => this.#onControl(conn, m);
    mux.onstream = (s) => this.#onAgentStream(conn, s);
    mux.onerror = (err) => this.#log('tunnel: connection error', { agent: conn.id, user: conn.user, error: err.message });
    mux.onclose = (info) => {
      clearTimeout(timer);
      this.#agents.delete(conn.id);
      if (conn.ready) {
        this.#log('tunnel: agent disconnected', { agent: conn.id, user: conn.user, code: info.code, reason: info.reason });
      }
    };
  }

  #onControl(conn: AgentConnection, m: ControlMessage): void {
    if (m.type === FrameType.HELLO && !conn.ready) return this.#onHello(conn, m.message);
    if (m.type === FrameType.GOAWAY) {
      this.#log('tunnel: agent is going away', { agent: conn.id, user: conn.user, reason: m.message.reason });
      return;
    }
    conn.mux.close(1002, 'unexpected control frame', { code: 'PROTOCOL_ERROR', reason: `unexpected control frame 0x${m.type.toString(16)}` });
  }

  #onHello(conn: AgentConnection, hello: Required<Pick<HelloMessage, 'versions' | 'serve' | 'serveAll' | 'publish'>>): void {
    const version = TUNNEL_PROTOCOL_VERSIONS.find((v) => hello.versions.includes(v));
    if (version === undefined) {
      this.#log('tunnel: agent refused: no common protocol version', { agent: conn.id, user: conn.user, offered: hello.versions });
      conn.mux.close(CLOSE_UNSUPPORTED_VERSION, 'unsupported protocol version', {
        code: 'UNSUPPORTED_VERSION',
        reason: `this cluster speaks tunnel protocol versions ${TUNNEL_PROTOCOL_VERSIONS.join(', ')}; the agent offered ${hello.versions.join(', ')}`,
        supportedVersions: [...TUNNEL_PROTOCOL_VERSIONS],
      });
      return;
    }
    const decision = decideServe(this.#opts, conn.user, hello.serve, hello.serveAll);
    for (const r of decision.rejected) {
      this.#log('tunnel: refused to let agent serve Service', { agent: conn.id, user: conn.user, service: r.name, reason: r.reason });
    }
    conn.version = version;
    conn.serveAll = hello.serveAll;
    conn.publish = hello.publish;
    for (const name of hello.serve) conn.wants.add(canonicalServiceNameSafe(name));
    for (const a of decision.accepted) conn.accepted.set(a.name, a.upstreams);
    conn.mux.sendControl(FrameType.WELCOME, {
      version,
      agentId: conn.id,
      user: conn.user,
      services: conn.acceptedList(),
      rejected: decision.rejected,
    });
    conn.ready = true;
    this.#log('tunnel: agent connected', {
      agent: conn.id, user: conn.user, serving: [...conn.accepted.keys()], publishing: conn.publish,
    });
    for (const w of [...this.#waiters]) w();
  }

  #onAgentStream(conn: AgentConnection, stream: TunnelStream): void {
    if (!conn.ready) return stream.reset('REFUSED', 'handshake not complete');
    // Agents only publish; serving streams flow hub → agent, never the other way.
    if (stream.requestHead.kind !== 'publish') return stream.reset('REFUSED', 'agents may only open publish streams');
    conn.publishedStreams++;
    replayPublished(stream, conn, { selfURL: this.#opts.selfURL(), dispatcher: this.#loopback, log: this.#log }).catch((err: Error) => {
      this.#log('tunnel: published request failed', { agent: conn.id, error: err.message });
      stream.reset('INTERNAL', 'the cluster failed to replay the request');
    });
  }

  #reauthenticate(): void {
    for (const c of [...this.#agents.values()]) {
      if (!c.ready || c.mux.closed) continue;
      let user: string | undefined;
      try {
        user = this.#opts.authenticate(c.token)?.user.metadata.name;
      } catch {
        user = undefined; // an error is not a valid Session either
      }
      if (user === c.user) continue;
      this.#log('tunnel: agent Session is no longer valid; disconnecting it', { agent: c.id, user: c.user });
      c.mux.close(CLOSE_SESSION_ENDED, 'session ended', { code: 'SESSION_ENDED', reason: 'the Session of this agent is no longer valid' });
    }
  }

  // ---- dispatch ----

  /**
   * The least busy ready agent of the user serving `service` (round-robin among equals), syncing its view first;
   * 'full' when there are such agents but none has room in its buffer budget for another stream.
   */
  #pick(userName: string, service: string, upstreams: string[]): AgentConnection | 'full' | undefined {
    const serving: AgentConnection[] = [];
    for (const c of this.#agents.values()) {
      if (!c.alive || c.user !== userName) continue;
      if (c.accepted.has(service) || c.serveAll || c.wants.has(service)) serving.push(c);
    }
    if (!serving.length) return undefined;
    const candidates = serving.filter((c) => c.mux.canOpenStream());
    if (!candidates.length) return 'full';
    const min = Math.min(...candidates.map((c) => c.mux.activeStreams));
    const least = candidates.filter((c) => c.mux.activeStreams === min);
    const conn = least[this.#rr++ % least.length];
    if (!conn.accepted.has(service)) {
      this.#log('tunnel: agent now serves Service', { agent: conn.id, user: conn.user, service });
    }
    conn.sync(service, upstreams);
    return conn;
  }

  async #send(conn: AgentConnection, service: string, target: string, req: TunnelRequest): Promise<TunnelResponse> {
    const stream = conn.mux.openStream({
      kind: 'serve',
      service,
      upstreamURL: target,
      method: req.method.toUpperCase(),
      path: req.path.startsWith('/') ? req.path : `/${req.path}`,
      headers: endToEndHeaders(req.headers),
      hasBody: req.body !== undefined,
    });
    conn.servedStreams++;
    const signal = req.signal;
    const onAbort = () => stream.reset('CANCEL', 'client went away');
    if (signal) {
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    if (typeof req.body === 'string' || req.body instanceof Uint8Array) {
      stream.writable.end(Buffer.from(req.body));
    } else if (req.body) {
      pipeline(req.body, stream.writable, (err) => {
        if (err && !stream.closed) stream.reset('CANCEL', `request body failed: ${err.message}`);
      });
    } else {
      stream.writable.end();
    }
    try {
      const head = await stream.responseHead;
      return { statusCode: head.status, headers: head.headers, body: stream.readable };
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      const e = err as TunnelStreamError;
      const reason = err instanceof TunnelStreamError ? e.reason : (err as Error).message;
      throw new OcteliumError('UPSTREAM_FAILED', `upstream of ${service} via octelium connect failed: ${reason}`, {
        service, user: conn.user, agent: conn.id, code: e.code,
      });
    }
  }

  #waitForAgent(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

function canonicalServiceNameSafe(name: string): string {
  try {
    return canonicalServiceName(name);
  } catch {
    return name;
  }
}
