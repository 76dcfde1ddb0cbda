import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Agent as UndiciAgent } from 'undici';
import {
  TUNNEL_PATH, TUNNEL_PROTOCOL_VERSIONS, clusterURL, type TunnelMux,
} from '@octelium-ts/shared';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { DialError, dialTunnel, type TunnelSession } from './dial.js';
import { PublishListener, type PublishSpec } from './publish.js';
import { serveStream } from './serve.js';
import { StdioBridge } from './stdio/bridge.js';
import type { StdioServeSpec } from './stdio/command-line.js';
import { DEFAULT_STDIO_LIMITS, type StdioLimits } from './stdio/session.js';
import { removeConnectState, writeConnectState, type ConnectState } from './state.js';

export { parsePublishSpec, formatAddress, type PublishSpec } from './publish.js';
export { readConnectState, readConnectStates, connectStatePath, connectLogPath, type ConnectState, type ConnectionState } from './state.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { DialError } from './dial.js';
export { parseStdioSpec, splitWords, type StdioServeSpec } from './stdio/command-line.js';
export { DEFAULT_STDIO_LIMITS, type StdioLimits } from './stdio/session.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  domain: string;
  /** Session access token (from `authenticatedClient`). */
  accessToken: string;
  /** Called when the cluster answers 401, to get a fresh Session (e.g. by exchanging the auth token again). */
  renewAccessToken?: () => Promise<string>;
  serve: string[];
  serveAll: boolean;
  /** Services served by running a stdio MCP server here, one process per MCP session (`--serve-stdio`). */
  serveStdio?: StdioServeSpec[];
  stdioLimits?: Partial<StdioLimits>;
  publish: PublishSpec[];
  onState?: (state: AgentState) => void;
  /** Tunnel URL; default ws(s)://<domain>/api/v1/connect (plain ws for loopback domains). */
  url?: string;
  /** State file path; default `$HOME/.config/octelium/connect-<domain>.<pid>.json`; false: none. */
  stateFile?: string | false;
  backoff?: BackoffOptions;
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /**
   * Host names a published port accepts in `Host` (with its port) besides localhost, 127.0.0.1 and [::1]; anything
   * else gets 403 (DNS rebinding protection). Default none.
   */
  publishAllowedHosts?: string[];
  /** How long a request on a published port waits for a reconnecting tunnel before 503. Default 2 s. */
  publishGraceMs?: number;
  /**
   * Streams that may be open at once on the tunnel; a request from the hub beyond it is refused with
   * TOO_MANY_STREAMS (a 502 at the gateway). Default DEFAULT_MAX_STREAMS (16 384).
   */
  maxStreams?: number;
  /**
   * Bytes the tunnel's streams may hold in this process (received and unread, unsent, heads); a stream that needs more
   * is reset with OVER_BUDGET. Default DEFAULT_CONNECTION_BUFFER_BYTES (256 MiB).
   */
  maxBufferedBytes?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface AgentState extends ConnectState {
  agentId?: string;
  /** Machine-readable kind of `lastError` (DialError codes, or CONNECTION_LOST). */
  lastErrorCode?: string;
  /** True once the agent was connected at least once since it started. */
  everConnected: boolean;
  /**
   * Set when the agent stopped retrying for good: the cluster refuses its Session (401: revoked, expired, logged out)
   * and there is no auth token to get a new one, or the auth token is refused too. Retrying could never succeed.
   */
  gaveUp?: boolean;
}

export interface AgentStats { activeStreams: number; served: number; published: number }

export interface AgentHandle {
  readonly state: AgentState;
  stats(): AgentStats;
  on(event: 'state', fn: (s: AgentState) => void): this;
  off(event: 'state', fn: (s: AgentState) => void): this;
  /** Stops reconnecting, closes the tunnel and the published ports, removes the state file. */
  close(): Promise<void>;
}

export function tunnelURL(domain: string): string {
  return clusterURL(domain).replace(/^http/, 'ws').replace(/\/+$/, '') + TUNNEL_PATH;
}

function defaultLog(msg: string, fields?: Record<string, unknown>): void {
  process.stderr.write(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}\n`);
}

/** Starts `octelium connect`'s agent: published ports are listening when this resolves; the tunnel comes up behind. */
export async function startAgent(opts: AgentOptions): Promise<AgentHandle> {
  const agent = new ConnectAgent(opts);
  await agent.start();
  return agent;
}

class ConnectAgent extends EventEmitter implements AgentHandle {
  readonly #opts: AgentOptions;
  readonly #log: (msg: string, fields?: Record<string, unknown>) => void;
  readonly #dispatcher: UndiciAgent;
  readonly #listeners: PublishListener[];
  readonly #abort = new AbortController();
  readonly #stdio = new Map<string, StdioBridge>();
  #token: string;
  #state: AgentState;
  #session?: TunnelSession;
  #served = 0;
  #published = 0;
  #loop?: Promise<void>;
  #wakeSleep?: () => void;

  constructor(opts: AgentOptions) {
    super();
    this.#opts = opts;
    this.#token = opts.accessToken;
    this.#log = opts.log ?? defaultLog;
    // The hub owns timeouts (the gateway aborts with a RESET); an idle SSE stream must not be cut here.
    this.#dispatcher = new UndiciAgent({ bodyTimeout: 0, headersTimeout: 0 });
    const limits = { ...DEFAULT_STDIO_LIMITS, ...opts.stdioLimits };
    for (const spec of opts.serveStdio ?? []) this.#stdio.set(spec.service, new StdioBridge(spec, limits, this.#log));
    this.#listeners = opts.publish.map((spec) => new PublishListener(spec, {
      getMux: (ms) => this.#waitForMux(ms),
      graceMs: opts.publishGraceMs ?? 2000,
      onStream: () => this.#published++,
      allowedHosts: opts.publishAllowedHosts,
      log: this.#log,
    }));
    this.#state = {
      pid: process.pid,
      domain: opts.domain,
      state: 'connecting',
      since: new Date().toISOString(),
      serving: [],
      publishing: [],
      everConnected: false,
    };
    if (opts.onState) this.on('state', opts.onState);
  }

  get state(): AgentState {
    return this.#state;
  }

  stats(): AgentStats {
    return { activeStreams: this.#session?.mux.activeStreams ?? 0, served: this.#served, published: this.#published };
  }

  async start(): Promise<void> {
    try {
      for (const l of this.#listeners) await l.listen();
    } catch (err) {
      await Promise.all(this.#listeners.map((l) => l.close().catch(() => {})));
      await this.#dispatcher.close();
      throw err;
    }
    this.#set({ publishing: this.#listeners.map((l) => ({ service: l.spec.service, address: l.address! })) });
    this.#loop = this.#run();
  }

  async close(): Promise<void> {
    if (this.#abort.signal.aborted) {
      await this.#loop;
      return;
    }
    this.#abort.abort();
    this.#wakeSleep?.();
    this.#session?.mux.close(1000, 'agent shutting down', { code: 'SHUTDOWN', reason: 'agent shutting down' });
    await this.#loop;
    await Promise.all(this.#listeners.map((l) => l.close()));
    for (const b of this.#stdio.values()) b.closeAll();
    await this.#dispatcher.destroy().catch(() => {});
    if (this.#opts.stateFile !== false) removeConnectState(this.#opts.domain, this.#opts.stateFile);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let attempt = 0;
    while (!signal.aborted) {
      this.#set({ state: 'connecting', retryAt: undefined });
      try {
        const session = await dialTunnel({
          url: this.#opts.url ?? tunnelURL(this.#opts.domain),
          accessToken: this.#token,
          hello: {
            versions: [...TUNNEL_PROTOCOL_VERSIONS],
            agent: { version: AGENT_VERSION, hostname: hostname(), pid: process.pid },
            serve: [...this.#opts.serve, ...this.#stdio.keys()],
            serveAll: this.#opts.serveAll,
            publish: this.#opts.publish.map((p) => p.service),
          },
          heartbeat: this.#opts.heartbeat,
          maxStreams: this.#opts.maxStreams,
          maxBufferedBytes: this.#opts.maxBufferedBytes,
          signal,
          onstream: (stream, s) => {
            this.#served++;
            const head = stream.requestHead;
            // A stdio Service: the hub accepted it for this User; its upstream.url is not dialled.
            const stdio = head.kind === 'serve' && s.accepted.has(head.service) ? this.#stdio.get(head.service) : undefined;
            (stdio ? stdio.serve(stream) : serveStream(stream, { accepted: s.accepted, dispatcher: this.#dispatcher, log: this.#log })).catch((err: Error) => {
              this.#log('serving a request failed', { service: stream.requestHead.service, error: err.message });
              stream.reset('INTERNAL', 'the agent failed to serve the request');
            });
          },
        });
        if (signal.aborted) {
          session.mux.close(1000, 'agent shutting down');
          break;
        }
        attempt = 0;
        this.#session = session;
        const { welcome } = session;
        this.#set({
          state: 'connected', user: welcome.user, agentId: welcome.agentId, everConnected: true,
          serving: welcome.services.map((s) => s.name), rejected: welcome.rejected, lastError: undefined, lastErrorCode: undefined,
        });
        session.subscribe((services) => this.#set({ serving: services.map((s) => s.name) }));
        this.emit('connected');
        const end = await session.ended;
        this.#session = undefined;
        if (signal.aborted) break;
        const why = end.goAway ? `${end.goAway.code}: ${end.goAway.reason}` : end.reason || `code ${end.code}`;
        this.#disconnected(attempt++, `tunnel closed (${why})`, 'CONNECTION_LOST');
      } catch (err) {
        if (signal.aborted) break;
        const e = err instanceof DialError ? err : new DialError('NETWORK', (err as Error).message);
        let message = e.message;
        if (e.code === 'UNAUTHENTICATED') {
          const renewal = await this.#renew();
          if (renewal.refused) {
            // Nothing this agent holds can get a Session again: stop instead of knocking with a dead token forever.
            this.#set({ state: 'disconnected', lastError: `${message}${renewal.error ? `; renewing the Session failed: ${renewal.error}` : ''}`, lastErrorCode: e.code, retryAt: undefined, gaveUp: true });
            break;
          }
          if (renewal.error) message = `${message}; renewing the Session failed: ${renewal.error}`;
        }
        this.#disconnected(attempt++, message, e.code);
      }
      if (signal.aborted) break;
      await this.#sleep(Date.parse(this.#state.retryAt ?? '') - Date.now());
    }
    this.#session = undefined;
    this.#set({ state: 'disconnected', retryAt: undefined });
  }

  /**
   * After a 401: a fresh Session from the auth token, if the agent has one. `refused` when there is no way to get one
   * (no auth token, or the cluster refuses it with 401 too); a network error while renewing is worth retrying.
   */
  async #renew(): Promise<{ refused: boolean; error?: string }> {
    if (!this.#opts.renewAccessToken) return { refused: true };
    try {
      this.#token = await this.#opts.renewAccessToken();
      return { refused: false };
    } catch (err) {
      const status = (err as { httpStatus?: unknown }).httpStatus;
      return { refused: status === 401, error: (err as Error).message };
    }
  }

  #disconnected(attempt: number, lastError: string, lastErrorCode: string): void {
    const delay = backoffDelay(attempt, this.#opts.backoff);
    this.#set({ state: 'disconnected', lastError, lastErrorCode, retryAt: new Date(Date.now() + delay).toISOString() });
  }

  #sleep(ms: number): Promise<void> {
    if (!(ms > 0)) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      this.#wakeSleep = done;
      function done() {
        clearTimeout(t);
        resolve();
      }
    });
  }

  /** The live tunnel, or the next one if it comes within `ms`. */
  #waitForMux(ms: number): Promise<TunnelMux | undefined> {
    const live = this.#session?.mux;
    if (live && !live.closed) return Promise.resolve(live);
    if (this.#abort.signal.aborted || ms <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.off('connected', done);
        this.#abort.signal.removeEventListener('abort', done);
        const m = this.#session?.mux;
        resolve(m && !m.closed ? m : undefined);
      };
      const t = setTimeout(done, ms);
      this.on('connected', done);
      this.#abort.signal.addEventListener('abort', done, { once: true });
    });
  }

  #set(patch: Partial<AgentState>): void {
    const prev = this.#state;
    const next: AgentState = { ...prev, ...patch };
    if (patch.state && patch.state !== prev.state) next.since = new Date().toISOString();
    for (const k of Object.keys(next) as Array<keyof AgentState>) if (next[k] === undefined) delete next[k];
    if (JSON.stringify(next) === JSON.stringify(prev)) return;
    this.#state = next;
    if (this.#opts.stateFile !== false) {
      try {
        const { agentId: _a, lastErrorCode: _c, everConnected: _e, gaveUp: _g, ...file } = next;
        writeConnectState(file, this.#opts.stateFile);
      } catch (err) {
        this.#log('cannot write the connect state file', { error: (err as Error).message });
      }
    }
    this.emit('state', next);
  }
}

