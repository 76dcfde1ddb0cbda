import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific headers, plus proxy credentials. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection', 'http2-settings']);

/** Client credentials for the gateway itself: never forwarded upstream (design.md §2). */
const CLIENT_CREDENTIALS = new Set(['authorization', 'x-octelium-auth', 'cookie']);

function connectionListed(connection: string | string[] | undefined): Set<string> {
  const v = Array.isArray(connection) ? connection.join(',') : connection ?? '';
  return new Set(v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/** Headers to send upstream: hop-by-hop, client credentials and Host dropped (undici sets Host from the origin). */
export function upstreamRequestHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const listed = connectionListed(h.connection);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || CLIENT_CREDENTIALS.has(k) || listed.has(k) || k === 'host' || k === 'content-length') continue;
    out[k] = v;
  }
  return out;
}

/** Response headers to pass to the client. */
export function downstreamResponseHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = connectionListed(h.connection);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) {
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
