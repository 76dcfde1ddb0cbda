import { Readable } from 'node:stream';
import { Agent, errors as undiciErrors } from 'undici';
import { errorFromBody, isErrorBody, OcteliumError } from '@octelium-ts/shared';
import type { TunnelRequest, TunnelResponse } from '../tunnel/index.js';
import { FORWARD_PATH, replicaToken } from './replica-auth.js';

/** The peer could not be reached at all (nothing of the request was delivered): try another holder, or wait. */
export class PeerUnreachableError extends Error {}

export interface ForwardTimeouts {
  /** Connecting to a sibling replica; past it the sibling counts as unreachable. Default 2 s. */
  connectMs?: number;
  /** From sending to the response head: the agent and its upstream answering. Default 60 s, then 504. */
  headersMs?: number;
}

/** Header carrying the tunnel request's head (JSON, base64url); the body is the HTTP body, streamed. */
export const HEAD_HEADER = 'x-octelium-tunnel-request';
/** Set on answers that are the holder's own error (an OcteliumError as JSON), not the upstream's response. */
export const ERROR_HEADER = 'x-octelium-forward-error';

/**
 * Sends a tunnel request to the replica that holds the agent, over HTTP/1.1 keep-alive connections to its
 * advertised URL. Bodies stream both ways (TCP flow control end to end, SSE event by event); the holder runs the
 * request through its own hub as if it had arrived there, minus the gateway (this replica already authorized it).
 */
export class ReplicaForwarder {
  readonly #agent: Agent;
  readonly #token: string;
  readonly #headersMs: number;

  constructor(clusterSecret: string, timeouts: ForwardTimeouts = {}) {
    this.#token = replicaToken(clusterSecret);
    this.#headersMs = timeouts.headersMs ?? 60_000;
    // No body timeout: SSE streams idle by design; the gateway aborts them when the client goes.
    this.#agent = new Agent({ connect: { timeout: timeouts.connectMs ?? 2000 }, bodyTimeout: 0, headersTimeout: this.#headersMs, keepAliveTimeout: 30_000, connections: 256 });
  }

  async forward(peerURL: string, userName: string, req: TunnelRequest): Promise<TunnelResponse> {
    const head = Buffer.from(JSON.stringify({ user: userName, service: req.service, upstreamURL: req.upstreamURL, method: req.method, path: req.path, headers: req.headers, hasBody: req.body !== undefined })).toString('base64url');
    const base = new URL(peerURL);
    let res;
    try {
      res = await this.#agent.request({
        origin: base.origin, path: FORWARD_PATH, method: 'POST',
        headers: { authorization: `Replica ${this.#token}`, [HEAD_HEADER]: head },
        body: req.body === undefined ? undefined : typeof req.body === 'string' || req.body instanceof Uint8Array ? req.body : (req.body as Readable),
        signal: req.signal,
      });
    } catch (err) {
      if (req.signal?.aborted) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (err instanceof undiciErrors.ConnectTimeoutError || /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|UND_ERR_CONNECT_TIMEOUT/.test(code)) {
        throw new PeerUnreachableError(`replica at ${base.host} is unreachable (${code || (err as Error).message})`);
      }
      if (err instanceof undiciErrors.HeadersTimeoutError) {
        throw new OcteliumError('UPSTREAM_TIMEOUT', `no answer within ${this.#headersMs} ms from the replica at ${base.host} holding the agent of user ${userName}`);
      }
      throw new OcteliumError('UPSTREAM_FAILED', `forwarding to the replica at ${base.host} holding the agent of user ${userName} failed: ${(err as Error).message}`);
    }
    if (res.headers[ERROR_HEADER]) {
      const text = await res.body.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (isErrorBody(body)) throw errorFromBody(body, res.statusCode);
      throw new OcteliumError('UPSTREAM_FAILED', `the replica at ${base.host} answered ${res.statusCode}`);
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = v;
    return { statusCode: res.statusCode, headers, body: res.body as unknown as Readable };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
