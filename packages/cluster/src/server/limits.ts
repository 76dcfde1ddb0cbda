/**
 * Limits of the one listener, with their defaults (docs/security.md lists each with its flag). They bound
 * what one client can make the cluster hold: header bytes and count, URL length, how long headers and
 * bodies may dribble in (slowloris), body size when the Service does not buffer, in-flight requests per user.
 */
export interface ListenerLimits {
  /** Total request-header bytes (Node's `maxHeaderSize`); past it: 431. Envoy allows 60 KiB, Node 16 KiB. */
  maxHeaderBytes: number;
  /** Request header fields; past it: 431 (Envoy's default is 100). */
  maxHeaderCount: number;
  /** Request-target bytes; past it: 414. */
  maxUrlBytes: number;
  /** The whole header block must arrive within this; else 408 and the connection closes. */
  headersTimeoutMs: number;
  /** The whole request (headers + body) must arrive within this; else 408. Responses (SSE) are not limited. */
  requestTimeoutMs: number;
  /** Request body cap for Services that do not set `maxRequestSize` and do not buffer (streamed bodies); past it: 413. */
  maxStreamedBodyBytes: number;
  /** Gateway requests in flight per user (anonymous: per client address); past it: 429. */
  maxInflightPerUser: number;
  /** `X-Forwarded-*` hops to trust from the client side (0: the client's own headers are replaced). */
  trustedProxyHops: number;
}

export const DEFAULT_LIMITS: ListenerLimits = {
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 100,
  maxUrlBytes: 8 * 1024,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 300_000,
  maxStreamedBodyBytes: 100 * 1024 * 1024,
  maxInflightPerUser: 512,
  trustedProxyHops: 0,
};

export function resolveLimits(partial: Partial<ListenerLimits> = {}): ListenerLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [k, v] of Object.entries(partial) as Array<[keyof ListenerLimits, number | undefined]>) if (v !== undefined) out[k] = v;
  return out;
}
