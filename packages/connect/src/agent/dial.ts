import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import {
  FrameType, MAX_FRAME_BYTES, TUNNEL_PROTOCOL_VERSIONS, TunnelBudget, TunnelMux, WebSocketTransport, isErrorBody, normalizeUpstreamURL,
  type TunnelStream,
  type AcceptedService, type GoAwayMessage, type HelloMessage, type TransportCloseInfo, type WelcomeMessage,
} from '@octelium-ts/shared';
import { nativeMask } from './native-mask.js';

const MASK = nativeMask();

/** Why a connection attempt failed. `fatal` ones will not get better by retrying with the same token. */
export class DialError extends Error {
  readonly code: 'UNAUTHENTICATED' | 'REJECTED' | 'UNSUPPORTED_VERSION' | 'HANDSHAKE' | 'NETWORK';
  readonly status?: number;
  constructor(code: DialError['code'], message: string, status?: number) {
    super(message);
    this.name = 'DialError';
    this.code = code;
    this.status = status;
  }
  get fatal(): boolean {
    return this.code === 'UNAUTHENTICATED' || this.code === 'UNSUPPORTED_VERSION';
  }
}

export interface DialOptions {
  url: string;
  accessToken: string;
  hello: HelloMessage;
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  handshakeTimeoutMs?: number;
  /** Streams that may be open at once on the connection (TunnelMuxOptions.maxStreams). */
  maxStreams?: number;
  /** The connection's buffer budget (TunnelMuxOptions.budget); default DEFAULT_CONNECTION_BUFFER_BYTES. */
  maxBufferedBytes?: number;
  /**
   * Streams the hub opens. Installed before HELLO goes out, because the first request may arrive in the same socket
   * read as WELCOME; `session.accepted` is already up to date when it is called.
   */
  onstream: (stream: TunnelStream, session: TunnelSession) => void;
  /** Aborts a dial in progress (agent shutting down). */
  signal?: AbortSignal;
}

export interface SessionEnd extends TransportCloseInfo { goAway?: GoAwayMessage }

/** An established, handshaken tunnel connection. */
export interface TunnelSession {
  mux: TunnelMux;
  welcome: WelcomeMessage;
  /** Accepted Service → the normalized upstream URLs it may dial; replaced synchronously on WELCOME and SERVICES. */
  accepted: Map<string, Set<string>>;
  /** Resolves when the connection is gone, however that happened. */
  ended: Promise<SessionEnd>;
  /** Receives every SERVICES update (the full accepted list), including any that arrived before subscribing. */
  subscribe(fn: (services: AcceptedService[]) => void): void;
  onservices?: (services: AcceptedService[]) => void;
}

/** Opens the WebSocket with the Session token, sends HELLO and waits for WELCOME (or the reason there is none). */
export async function dialTunnel(opts: DialOptions): Promise<TunnelSession> {
  const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const ws = new WebSocket(opts.url, {
    headers: { authorization: `Bearer ${opts.accessToken}` },
    perMessageDeflate: false,
    maxPayload: MAX_FRAME_BYTES,
    handshakeTimeout: timeoutMs,
    // Masking keys are fresh and unpredictable per frame, as RFC 6455 §5.3 requires of a client: ws's own for the
    // frames it builds, a CSPRNG pool's for the DATA frames the transport builds (maskedTunnelFrame). The XOR that
    // made them expensive (docs/performance.md, T2) runs in native code: `bufferutil` is a dependency, and ws loads it
    // when it can resolve it.
  });
  let httpFailure: DialError | undefined;
  ws.on('unexpected-response', (_req: unknown, res: IncomingMessage) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if ((size += c.length) <= 64 * 1024) chunks.push(c);
    });
    res.on('end', () => {
      httpFailure = httpError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
      ws.terminate();
    });
    res.on('error', () => ws.terminate());
  });
  ws.on('error', () => {}); // reported through start()/close below
  const onAbort = () => ws.terminate();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await handshake(ws, opts, timeoutMs, () => httpFailure);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

async function handshake(ws: WebSocket, opts: DialOptions, timeoutMs: number, httpFailure: () => DialError | undefined): Promise<TunnelSession> {

  const transport = new WebSocketTransport(ws, {
    heartbeatIntervalMs: opts.heartbeat?.intervalMs,
    heartbeatTimeoutMs: opts.heartbeat?.timeoutMs,
    // The agent masks everything it sends: DATA frames are built and masked in one pass (maskedTunnelFrame).
    mask: MASK,
  });
  try {
    await transport.start();
  } catch (err) {
    if (opts.signal?.aborted) throw new DialError('NETWORK', 'agent is shutting down');
    throw httpFailure() ?? new DialError('NETWORK', `cannot open the tunnel at ${opts.url}: ${(err as Error).message}`);
  }

  const budget = opts.maxBufferedBytes ? new TunnelBudget(opts.maxBufferedBytes) : undefined;
  const mux = new TunnelMux(transport, { role: 'client', maxStreams: opts.maxStreams, budget });
  let goAway: GoAwayMessage | undefined;
  const ended = new Promise<SessionEnd>((resolve) => {
    mux.onclose = (info) => resolve({ ...info, goAway });
  });
  // One handler for the whole connection: frames that arrive in the same socket read as WELCOME (a SERVICES update)
  // must not fall between a handshake handler and a later one.
  let onWelcome: ((w: WelcomeMessage) => void) | undefined;
  const session: Partial<TunnelSession> & Pick<TunnelSession, 'mux' | 'ended' | 'accepted'> = { mux, ended, accepted: new Map() };
  const early: AcceptedService[][] = [];
  mux.oncontrol = (m) => {
    if (m.type === FrameType.GOAWAY) goAway = m.message;
    else if (m.type === FrameType.WELCOME) {
      if (!onWelcome) return; // a second WELCOME is ignored
      session.accepted = acceptedMap(m.message.services);
      onWelcome(m.message);
    } else if (m.type === FrameType.SERVICES) {
      session.accepted = acceptedMap(m.message.services);
      if (session.onservices) session.onservices(m.message.services);
      else early.push(m.message.services);
    }
  };
  mux.onstream = (stream) => {
    if (!session.welcome && onWelcome) {
      // Before WELCOME nothing is accepted; the hub never does this.
      stream.reset('REFUSED', 'handshake not complete');
      return;
    }
    opts.onstream(stream, session as TunnelSession);
  };
  const welcome = await new Promise<WelcomeMessage>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new DialError('HANDSHAKE', `no WELCOME from the cluster within ${timeoutMs} ms`));
      mux.close(1002, 'handshake timeout');
    }, timeoutMs);
    onWelcome = (w) => {
      onWelcome = undefined;
      session.welcome = w;
      clearTimeout(timer);
      if (!TUNNEL_PROTOCOL_VERSIONS.includes(w.version)) {
        reject(new DialError('UNSUPPORTED_VERSION', `cluster chose tunnel protocol version ${w.version}, which this agent does not speak`));
        mux.close(1002, 'unsupported version');
        return;
      }
      resolve(w);
    };
    ended.then((info) => {
      clearTimeout(timer);
      const g = info.goAway;
      if (g?.code === 'UNSUPPORTED_VERSION') reject(new DialError('UNSUPPORTED_VERSION', g.reason));
      else reject(new DialError('REJECTED', `cluster closed the tunnel during the handshake: ${g?.reason || info.reason || info.code}`));
    }, reject);
    mux.sendControl(FrameType.HELLO, opts.hello);
  });
  session.welcome = welcome;
  // Updates that raced the caller's subscription are replayed by `subscribe`.
  session.subscribe = (fn) => {
    session.onservices = fn;
    for (const list of early.splice(0)) fn(list);
  };
  return session as TunnelSession;
}

function acceptedMap(services: AcceptedService[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const s of services) {
    const urls = new Set<string>();
    for (const u of s.upstreams) {
      try {
        urls.add(normalizeUpstreamURL(u));
      } catch {
        // an unusable URL is simply not dialable
      }
    }
    out.set(s.name, urls);
  }
  return out;
}

function httpError(status: number, body: string): DialError {
  let message = body.trim().slice(0, 500);
  try {
    const json: unknown = JSON.parse(body);
    if (isErrorBody(json)) message = json.error.message;
  } catch {
    // not JSON: keep the text
  }
  if (status === 401) return new DialError('UNAUTHENTICATED', `cluster refused the Session (401): ${message || 'unauthenticated'}`, status);
  return new DialError('REJECTED', `cluster answered HTTP ${status} to the tunnel upgrade${message ? `: ${message}` : ''}`, status);
}
