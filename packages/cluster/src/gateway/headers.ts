import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { AUTH_COOKIE } from '../web/cookies.js';

/** RFC 9110 §7.6.1 connection-specific headers, plus proxy credentials. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'http2-settings']);

/** Client credentials for the gateway itself: never forwarded upstream (design.md §2). */
const CLIENT_CREDENTIALS = new Set(['authorization', 'x-octelium-auth']);

/**
 * The client's cookies minus the cluster's own Session cookie: a web app behind a Service keeps its cookies, and
 * `octelium_auth` never leaves the cluster (Octelium likewise removes only its own cookie).
 */
function cookiesForUpstream(v: string | string[]): string | undefined {
  const kept = (Array.isArray(v) ? v.join('; ') : v).split(';').map((c) => c.trim()).filter((c) => c && !c.startsWith(`${AUTH_COOKIE}=`));
  return kept.length ? kept.join('; ') : undefined;
}

const NONE_LISTED: ReadonlySet<string> = new Set();

function connectionListed(connection: string | string[] | undefined): ReadonlySet<string> {
  // `keep-alive`, what nearly every client and upstream sends, lists only itself, a hop-by-hop header anyway.
  if (connection === undefined || connection === 'keep-alive' || connection === 'Keep-Alive') return NONE_LISTED;
  const v = Array.isArray(connection) ? connection.join(',') : connection;
  return new Set(v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/** What a client could claim about where it came from; only a trusted proxy hop may say it. */
export const FORWARDING_HEADERS = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip'] as const;
const FORWARDING = new Set<string>(FORWARDING_HEADERS);

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Headers to send upstream: hop-by-hop, client credentials and Host dropped (undici sets Host from the origin),
 * and `X-Forwarded-*` set by the gateway. With `trustedProxyHops` 0 (the default: the cluster is the edge) the
 * client's own forwarding headers are discarded; behind trusted proxies their chain is kept and the peer appended
 * (Envoy's `use_remote_address` + `xff_num_trusted_hops`).
 */
export function upstreamRequestHeaders(req: IncomingMessage, trustedProxyHops = 0): Record<string, string | string[]> {
  const h: IncomingHttpHeaders = req.headers;
  const listed = connectionListed(h.connection);
  const out: Record<string, string | string[]> = {};
  // for-in, not Object.entries: no [key, value] array per header on the per-request path.
  for (const k in h) {
    const v = h[k];
    if (v === undefined || HOP_BY_HOP.has(k) || CLIENT_CREDENTIALS.has(k) || listed.has(k) || k === 'host' || k === 'content-length') continue;
    if (FORWARDING.has(k) && trustedProxyHops === 0) continue;
    if (k === 'cookie') {
      const kept = cookiesForUpstream(v);
      if (kept) out.cookie = kept;
      continue;
    }
    out[k] = v;
  }
  const peer = req.socket.remoteAddress ?? '';
  const chain = trustedProxyHops > 0 ? single(h['x-forwarded-for']) : undefined;
  out['x-forwarded-for'] = chain ? `${chain}, ${peer}` : peer;
  out['x-forwarded-proto'] = (trustedProxyHops > 0 && single(h['x-forwarded-proto'])) || ((req.socket as TLSSocket).encrypted ? 'https' : 'http');
  const host = (trustedProxyHops > 0 && single(h['x-forwarded-host'])) || h.host;
  if (host) out['x-forwarded-host'] = host;
  return out;
}

/** Response headers to pass to the client. */
export function downstreamResponseHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = connectionListed(h.connection);
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || HOP_BY_HOP.has(k) || listed.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** Lower-case keys, repeated values joined — the shape CEL and Lua see. */
export function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}
