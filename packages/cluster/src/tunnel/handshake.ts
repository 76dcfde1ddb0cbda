import { randomBytes } from 'node:crypto';
import type { Agent as UndiciAgent } from 'undici';
import type { WebSocket } from 'ws';
import {
  DEFAULT_CONNECTION_BUFFER_BYTES, FrameType, TUNNEL_PROTOCOL_VERSIONS, TunnelBudget, TunnelMux, WebSocketTransport, canonicalServiceName,
  type ControlMessage, type HelloMessage, type TunnelStream,
} from '@octelium-ts/shared';
import type { Principal } from '../auth/principal.js';
import { AgentConnection } from './agent-conn.js';
import { replayPublished } from './publish-replay.js';
import type { AgentRegistry } from './registry.js';
import { decideServe } from './services.js';
import type { TunnelHubOptions } from './index.js';

// Application close codes (4000–4999) the agent can tell apart from network failures.
export const CLOSE_UNSUPPORTED_VERSION = 4002;
export const CLOSE_HANDSHAKE_FAILED = 4003;
export const CLOSE_SESSION_ENDED = 4001;

export type HubLog = (msg: string, fields?: Record<string, unknown>) => void;

/** What the handshake needs from its hub. */
export interface HandshakeDeps {
  opts: TunnelHubOptions;
  registry: AgentRegistry;
  /** The cluster-wide buffer budget; each connection gets its own share under it. */
  budget: TunnelBudget;
  /** Where published streams are replayed (the cluster's own listener). */
  loopback: UndiciAgent;
  log: HubLog;
}

/**
 * A new tunnel, from the accepted WebSocket to a registered agent: mux over the socket, HELLO within the handshake
 * timeout (protocol version, which Services it may serve), WELCOME; afterwards only publish streams from the agent.
 */
export function acceptAgent(ws: WebSocket, principal: Principal, token: string, d: HandshakeDeps): void {
  const { opts, registry, log } = d;
  const hb = opts.heartbeat ?? {};
  const transport = new WebSocketTransport(ws, { heartbeatIntervalMs: hb.intervalMs, heartbeatTimeoutMs: hb.timeoutMs });
  const mux = new TunnelMux(transport, {
    role: 'server',
    maxStreams: opts.maxStreams,
    budget: new TunnelBudget(opts.maxBufferedBytesPerAgent ?? DEFAULT_CONNECTION_BUFFER_BYTES, d.budget),
  });
  const conn = new AgentConnection(randomBytes(6).toString('hex'), principal, token, mux);
  registry.add(conn);
  const timer = setTimeout(() => {
    if (conn.ready) return;
    log('tunnel: agent did not complete the handshake', { agent: conn.id, user: conn.user });
    mux.close(CLOSE_HANDSHAKE_FAILED, 'handshake timeout', { code: 'HANDSHAKE_TIMEOUT', reason: 'no HELLO received' });
  }, opts.handshakeTimeoutMs ?? 10_000);
  timer.unref();
  // Already open (ws upgraded it synchronously); a socket that closed in between never fires 'close' for us.
  transport.start().catch(() => {
    clearTimeout(timer);
    registry.remove(conn);
  });

  mux.oncontrol = (m) => onControl(conn, m, d);
  mux.onstream = (s) => onAgentStream(conn, s, d);
  mux.onerror = (err) => log('tunnel: connection error', { agent: conn.id, user: conn.user, error: err.message });
  mux.onclose = (info) => {
    clearTimeout(timer);
    registry.remove(conn);
    if (conn.ready) log('tunnel: agent disconnected', { agent: conn.id, user: conn.user, code: info.code, reason: info.reason });
  };
}

function onControl(conn: AgentConnection, m: ControlMessage, d: HandshakeDeps): void {
  if (m.type === FrameType.HELLO && !conn.ready) return onHello(conn, m.message, d);
  if (m.type === FrameType.GOAWAY) {
    d.log('tunnel: agent is going away', { agent: conn.id, user: conn.user, reason: m.message.reason });
    return;
  }
  conn.mux.close(1002, 'unexpected control frame', { code: 'PROTOCOL_ERROR', reason: `unexpected control frame 0x${m.type.toString(16)}` });
}

function onHello(conn: AgentConnection, hello: Required<Pick<HelloMessage, 'versions' | 'serve' | 'serveAll' | 'publish'>>, d: HandshakeDeps): void {
  const version = TUNNEL_PROTOCOL_VERSIONS.find((v) => hello.versions.includes(v));
  if (version === undefined) {
    d.log('tunnel: agent refused: no common protocol version', { agent: conn.id, user: conn.user, offered: hello.versions });
    conn.mux.close(CLOSE_UNSUPPORTED_VERSION, 'unsupported protocol version', {
      code: 'UNSUPPORTED_VERSION',
      reason: `this cluster speaks tunnel protocol versions ${TUNNEL_PROTOCOL_VERSIONS.join(', ')}; the agent offered ${hello.versions.join(', ')}`,
      supportedVersions: [...TUNNEL_PROTOCOL_VERSIONS],
    });
    return;
  }
  const decision = decideServe(d.opts, conn.user, hello.serve, hello.serveAll);
  for (const r of decision.rejected) {
    d.log('tunnel: refused to let agent serve Service', { agent: conn.id, user: conn.user, service: r.name, reason: r.reason });
  }
  conn.version = version;
  conn.serveAll = hello.serveAll;
  conn.publish = hello.publish;
  for (const name of hello.serve) conn.wants.add(canonicalServiceNameSafe(name));
  for (const a of decision.accepted) conn.accepted.set(a.name, a.upstreams);
  conn.mux.sendControl(FrameType.WELCOME, { version, agentId: conn.id, user: conn.user, services: conn.acceptedList(), rejected: decision.rejected });
  conn.ready = true;
  d.log('tunnel: agent connected', { agent: conn.id, user: conn.user, serving: [...conn.accepted.keys()], publishing: conn.publish });
  d.registry.notify();
}

function onAgentStream(conn: AgentConnection, stream: TunnelStream, d: HandshakeDeps): void {
  if (!conn.ready) return stream.reset('REFUSED', 'handshake not complete');
  // Agents only publish; serving streams flow hub → agent, never the other way.
  if (stream.requestHead.kind !== 'publish') return stream.reset('REFUSED', 'agents may only open publish streams');
  conn.publishedStreams++;
  replayPublished(stream, conn, { selfURL: d.opts.selfURL(), dispatcher: d.loopback, log: d.log }).catch((err: Error) => {
    d.log('tunnel: published request failed', { agent: conn.id, error: err.message });
    stream.reset('INTERNAL', 'the cluster failed to replay the request');
  });
}

/** Disconnects agents whose Session was revoked, expired or now belongs to someone else (GOAWAY SESSION_ENDED). */
export function reauthenticateAgents(d: Pick<HandshakeDeps, 'opts' | 'registry' | 'log'>): void {
  for (const c of d.registry.all()) {
    if (!c.ready || c.mux.closed) continue;
    let user: string | undefined;
    try {
      user = d.opts.authenticate(c.token)?.user.metadata.name;
    } catch {
      user = undefined; // an error is not a valid Session either
    }
    if (user === c.user) continue;
    d.log('tunnel: agent Session is no longer valid; disconnecting it', { agent: c.id, user: c.user });
    c.mux.close(CLOSE_SESSION_ENDED, 'session ended', { code: 'SESSION_ENDED', reason: 'the Session of this agent is no longer valid' });
  }
}

function canonicalServiceNameSafe(name: string): string {
  try {
    return canonicalServiceName(name);
  } catch {
    return name;
  }
}
