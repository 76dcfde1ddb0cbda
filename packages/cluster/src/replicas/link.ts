import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import {
  API_PREFIX, CancelSignal, MAX_FRAME_BYTES, OcteliumError, TunnelMux, TunnelStreamError, WebSocketTransport, endToEndHeaders, errorFromBody, isErrorBody,
  pump, requestBodyOf,
  type TunnelStream,
} from '@octelium-ts/shared';
import type { TunnelHub, TunnelRequest, TunnelResponse } from '../tunnel/index.js';
import { rejectUpgrade } from '../tunnel/upgrade.js';
import { replicaTokenMatches } from './replica-auth.js';

/** The peer could not be reached at all (nothing of the request was delivered): try another holder, or wait. */
export class PeerUnreachableError extends Error {}

export interface LinkTimeouts {
  /** Connecting (TCP + WebSocket handshake) to a sibling; refused = unreachable, silent past this = 504. Default 2 s. */
  connectMs?: number;
  /** From opening a stream to its response head: the agent and its upstream answering. Default 60 s, then 504. */
  headersMs?: number;
}

/** Carries the user whose agent must serve the stream (tunnel heads have no field for it). */
const USER_HEADER = 'x-octelium-replica-user';
/** Links ping every 5 s and drop a sibling silent for 15 s, so a partition ends streams instead of hanging them. */
const HEARTBEAT = { heartbeatIntervalMs: 5_000, heartbeatTimeoutMs: 15_000 };

/** A replica link is a tunnel connection told apart by its credential: `Authorization: Replica <token>`. */
export function isReplicaLink(req: IncomingMessage): boolean {
  return /^Replica\s/.test(req.headers.authorization ?? '');
}

/**
 * Replica-to-replica forwarding over the tunnel's own protocol (docs/tunnel.md): one WebSocket per sibling, many
 * multiplexed streams with per-stream flow control, opened to `GET /api/v1/connect` with the replica token. A
 * forwarded request is a `serve` stream; the holding replica hands it to its agent's stream and the bodies flow
 * frame by frame (SSE event by event), with no HTTP parsing in between.
 */
export class ReplicaLinks {
  readonly #links = new Map<string, Promise<TunnelMux>>();
  readonly #connectMs: number;
  readonly #headersMs: number;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  readonly #accepted = new Set<TunnelMux>();

  constructor(private readonly token: string, private readonly hub: Pick<TunnelHub, 'dispatch'>, timeouts: LinkTimeouts = {}) {
    this.#connectMs = timeouts.connectMs ?? 2000;
    this.#headersMs = timeouts.headersMs ?? 60_000;
  }

  // ---- the forwarding side ----

  #link(peerURL: string): Promise<TunnelMux> {
    let link = this.#links.get(peerURL);
    if (!link) {
      link = this.#dial(peerURL);
      this.#links.set(peerURL, link);
      link.then((mux) => {
        mux.onclose = () => this.#links.get(peerURL) === link && this.#links.delete(peerURL);
      }, () => this.#links.get(peerURL) === link && this.#links.delete(peerURL));
    }
    return link;
  }

  async #dial(peerURL: string): Promise<TunnelMux> {
    const u = new URL(peerURL);
    const ws = new WebSocket(`${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}${API_PREFIX}/connect`, {
      headers: { authorization: `Replica ${this.token}` }, handshakeTimeout: this.#connectMs, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES,
    });
    let refused: number | undefined;
    ws.once('unexpected-response', (_req, res) => {
      refused = res.statusCode;
      res.resume();
      ws.terminate(); // with this listener ws leaves ending the attempt to us
    });
    const transport = new WebSocketTransport(ws, HEARTBEAT);
    try {
      await transport.start();
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const message = (err as Error).message;
      if (refused) throw new OcteliumError('UPSTREAM_FAILED', `the replica at ${u.host} refused the replica link (HTTP ${refused}): is it a replica of this cluster?`);
      if (/timed out/i.test(message)) throw new OcteliumError('UPSTREAM_TIMEOUT', `the replica at ${u.host} holding the agent did not answer within ${this.#connectMs} ms`);
      throw new PeerUnreachableError(`replica at ${u.host} is unreachable (${code || message})`);
    }
    const mux = new TunnelMux(transport, { role: 'client' });
    mux.onstream = (s) => s.reset('REFUSED', 'replica links carry streams toward the holding replica only');
    mux.onerror = () => {};
    return mux;
  }

  async forward(peerURL: string, userName: string, req: TunnelRequest): Promise<TunnelResponse> {
    const mux = await this.#link(peerURL);
    if (mux.closed) throw new PeerUnreachableError(`the link to the replica at ${new URL(peerURL).host} just closed`);
    const stream = mux.openStream({
      kind: 'serve', service: req.service, upstreamURL: req.upstreamURL, method: req.method.toUpperCase(),
      path: req.path.startsWith('/') ? req.path : `/${req.path}`,
      headers: { ...endToEndHeaders(req.headers), [USER_HEADER]: userName },
      hasBody: req.body !== undefined,
    });
    const signal = req.signal;
    const onAbort = () => stream.reset('CANCEL', 'client went away');
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal?.removeEventListener('abort', onAbort));
    if (typeof req.body === 'string' || req.body instanceof Uint8Array) {
      // DATA + END without a Writable, as the hub sends a buffered body to its agent (tunnel/dispatch.ts).
      stream.writeChunk(Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body));
      stream.endChunks();
    } else if (req.body) {
      pump(req.body as Readable, stream.writable, (err) => err && !stream.closed && stream.reset('CANCEL', `request body failed: ${err.message}`));
    } else {
      stream.endChunks();
    }
    // No answer in time: the stream is reset, which rejects the head with the reset (told apart by `timedOut`).
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stream.reset('CANCEL', 'no response head in time');
    }, this.#headersMs);
    try {
      const head = await stream.responseHead;
      return { statusCode: head.status, headers: head.headers, body: stream.readable, attach: (sink) => stream.attach(sink) };
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      if (timedOut) throw new OcteliumError('UPSTREAM_TIMEOUT', `no answer within ${this.#headersMs} ms from the replica at ${new URL(peerURL).host} holding the agent of user ${userName}`);
      throw holderError(err, peerURL);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- the holding side ----

  /** An upgrade with the replica credential: checked here, then served as a link (siblings' forwarded streams). */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!replicaTokenMatches(req.headers.authorization, this.token)) {
      return rejectUpgrade(socket, new OcteliumError('UNAUTHENTICATED', 'not a replica of this cluster (wrong replica token)'));
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const transport = new WebSocketTransport(ws, HEARTBEAT);
      const mux = new TunnelMux(transport, { role: 'server' });
      this.#accepted.add(mux);
      mux.onclose = () => this.#accepted.delete(mux);
      mux.onerror = () => {};
      mux.onstream = (s) => void this.#serve(s);
      transport.start().catch(() => this.#accepted.delete(mux));
    });
  }

  async #serve(s: TunnelStream): Promise<void> {
    const head = s.requestHead;
    const user = head.headers[USER_HEADER];
    if (head.kind !== 'serve' || typeof user !== 'string') return s.reset('REFUSED', 'not a forwarded serve stream');
    const { [USER_HEADER]: _user, ...headers } = head.headers;
    // Cancelled only when the forwarding side reset the stream; a stream that completed has nothing left to cancel.
    const cancel = new CancelSignal();
    s.once('close', () => s.error && cancel.abort(new Error(`the forwarding replica went away: ${s.error.reason}`)));
    // A request without a body still ends with END, which must be taken for the stream to complete: left unread, every
    // forwarded GET (an SSE stream, say) stayed open on this side, its head charged to the link's budget, until the
    // link closed.
    if (!head.hasBody) s.discard();
    let res: TunnelResponse;
    try {
      const body = head.hasBody ? await requestBodyOf(s, headers) : undefined;
      if (s.closed) return;
      // Only this replica's own agents: a sibling never forwards further, so a stale registry cannot loop.
      res = await this.hub.dispatch(user, {
        service: head.service, upstreamURL: head.upstreamURL ?? '', method: head.method, path: head.path, headers,
        body, signal: cancel,
      });
    } catch (err) {
      const e = err instanceof OcteliumError ? err : new OcteliumError('UPSTREAM_FAILED', (err as Error).message);
      if (!s.closed) s.reset('UPSTREAM_FAILED', JSON.stringify({ ...e.toJSON(), status: e.httpStatus }));
      return;
    }
    if (s.closed) return void res.body.destroy();
    s.respond({ status: res.statusCode, headers: endToEndHeaders(res.headers) });
    pump(res.body, s.writable, (err) => err && !s.closed && s.reset('UPSTREAM_FAILED', `upstream response failed: ${err.message}`));
  }

  async close(): Promise<void> {
    for (const l of this.#links.values()) void l.then((m) => m.close(1001, 'replica stopping'), () => {});
    for (const m of this.#accepted) m.close(1001, 'replica stopping');
    this.#links.clear();
    await new Promise<void>((r) => this.#wss.close(() => r()));
  }
}

/** A stream error from the holding replica: its own OcteliumError (carried in the RESET reason), or a cut. */
function holderError(err: unknown, peerURL: string): OcteliumError {
  if (err instanceof TunnelStreamError) {
    try {
      const body = JSON.parse(err.reason) as unknown;
      if (isErrorBody(body)) return errorFromBody(body, (body as { status?: number }).status ?? 502);
    } catch {
      /* a plain reason */
    }
    return new OcteliumError('UPSTREAM_FAILED', `the replica at ${new URL(peerURL).host} holding the agent failed: ${err.reason}`);
  }
  return new OcteliumError('UPSTREAM_FAILED', `forwarding to the replica at ${new URL(peerURL).host} failed: ${(err as Error).message}`);
}
