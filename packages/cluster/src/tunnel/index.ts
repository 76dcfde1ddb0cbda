import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { Agent as UndiciAgent } from 'undici';
import { WebSocketServer } from 'ws';
import {
  DEFAULT_TOTAL_BUFFER_BYTES, MAX_FRAME_BYTES, OcteliumError, TunnelBudget,
  type AbortSignalLike, type Resource, type TunnelBodySink, type TunnelBodySource,
} from '@octelium-ts/shared';
import type { Principal } from '../auth/principal.js';
import { resolveTunnelTarget, sendToAgent } from './dispatch.js';
import { acceptAgent, reauthenticateAgents, type HandshakeDeps, type HubLog } from './handshake.js';
import { AgentRegistry } from './registry.js';
import { rejectUpgrade, upgradeToken } from './upgrade.js';

export { upstreamsServedBy, decideServe, decideService } from './services.js';
export { CLOSE_HANDSHAKE_FAILED, CLOSE_SESSION_ENDED, CLOSE_UNSUPPORTED_VERSION } from './handshake.js';

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
  /** The gateway's AbortSignal, or a CancelSignal (a forwarded stream on the holding replica). */
  signal?: AbortSignalLike;
}

export interface TunnelResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  /** The body as a stream. */
  body: Readable;
  /**
   * The body handed to a consumer without the stream (TunnelStream#attach): what the gateway's body writer uses
   * (UpstreamResponse.attach has this shape). Use one of `body` and `attach`, not both.
   */
  attach?(sink: TunnelBodySink): TunnelBodySource;
}

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

export const DEFAULT_MAX_CONNECTIONS_PER_USER = 16;

function defaultLog(msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
}

/**
 * The cluster end of `octelium connect`: accepts agents on `GET /api/v1/connect`, decides which Services each may
 * serve, routes gateway requests to them (`dispatch`) and replays what they publish through the gateway. The work is
 * split by concern: admission here, the handshake and publish streams in handshake.ts, who is connected in
 * registry.ts, and sending a request down a tunnel in dispatch.ts.
 */
export class TunnelHub {
  readonly #opts: TunnelHubOptions;
  readonly #log: HubLog;
  readonly #wss: WebSocketServer;
  readonly #registry = new AgentRegistry();
  readonly #loopback: UndiciAgent;
  readonly #reauthTimer?: NodeJS.Timeout;
  readonly #budget: TunnelBudget;
  readonly #handshake: HandshakeDeps;
  #closed = false;

  constructor(opts: TunnelHubOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? defaultLog;
    this.#budget = new TunnelBudget(opts.maxBufferedBytes ?? DEFAULT_TOTAL_BUFFER_BYTES);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
    // Published streams may be long-lived SSE; the gateway they go through applies the Service's own timeouts.
    this.#loopback = new UndiciAgent({ bodyTimeout: 0, headersTimeout: 0 });
    this.#handshake = { opts, registry: this.#registry, budget: this.#budget, loopback: this.#loopback, log: this.#log };
    const every = opts.reauthenticateMs ?? 30_000;
    if (every > 0) {
      this.#reauthTimer = setInterval(() => reauthenticateAgents(this.#handshake), every);
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

  /** Admission: a valid Session, and room under the User's connection cap; then the WebSocket handshake. */
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
    const cap = this.#opts.maxConnectionsPerUser ?? DEFAULT_MAX_CONNECTIONS_PER_USER;
    const { open, release } = this.#registry.admit(user, cap);
    if (!release) {
      this.#log('tunnel: refused a connection over the per-user limit', { user, open, limit: cap });
      rejectUpgrade(socket, new OcteliumError('RATE_LIMITED', `user ${user} already has ${open} tunnel connections, the limit; close one (octelium connect) or retry later`, { user, limit: cap }));
      return;
    }
    socket.once('close', release);
    this.#wss.handleUpgrade(req, socket, head, (ws) => acceptAgent(ws, p, token, this.#handshake));
  }

  isServing(userName: string, service: string): boolean {
    return this.#registry.isServing(userName, service);
  }

  /** Sends a gateway request down a tunnel of `userName`, waiting briefly (reconnectGraceMs) for an agent to appear. */
  async dispatch(userName: string, req: TunnelRequest): Promise<TunnelResponse> {
    const { service, target, upstreams } = resolveTunnelTarget((n) => this.#opts.getService(n), userName, req);
    const deadline = Date.now() + (this.#opts.reconnectGraceMs ?? 300);
    for (;;) {
      if (req.signal?.aborted) throw req.signal.reason ?? new Error('aborted');
      const conn = this.#registry.pick(userName, service);
      if (conn === 'full') {
        throw new OcteliumError('UNREACHABLE',
          `the tunnel to user ${userName} is over its memory budget (slow clients or a slow agent); retry later`,
          { service, user: userName });
      }
      if (conn) {
        if (!conn.accepted.has(service)) this.#log('tunnel: agent now serves Service', { agent: conn.id, user: conn.user, service });
        // Sync the agent's view first, so its URL check and ours never disagree.
        conn.sync(service, upstreams);
        return sendToAgent(conn, service, target, req);
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) {
        throw new OcteliumError('UPSTREAM_NOT_CONNECTED',
          `Service ${service} is served by user ${userName} through \`octelium connect\`, and no agent of that user is connected`,
          { service, user: userName });
      }
      await this.#registry.waitForAgent(left, req.signal);
    }
  }

  agents(): TunnelAgentInfo[] {
    return this.#registry.all().filter((c) => c.ready).map((c) => ({
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
    this.#registry.notify();
    const closing = this.#registry.all().map((c) => new Promise<void>((resolve) => {
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
    this.#registry.clear();
    await this.#loopback.close().catch(() => {});
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
