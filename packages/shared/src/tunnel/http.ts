import { pipeline } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { HeaderMap } from './frames.js';
import type { TunnelStream } from './stream.js';

/**
 * Hop-by-hop headers describe one TCP connection, not the exchange, so they never cross the tunnel (RFC 9110 §7.6.1).
 * `host` is dropped too: each side's HTTP client sets the Host of the URL it really dials (MCP servers check it).
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'expect', 'http2-settings',
]);

type LooseHeaders = Record<string, string | string[] | number | undefined>;

function connectionTokens(headers: LooseHeaders): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== 'connection' || v === undefined) continue;
    for (const part of (Array.isArray(v) ? v.join(',') : String(v)).split(',')) {
      const t = part.trim().toLowerCase();
      if (t) out.add(t);
    }
  }
  return out;
}

/** Lower-cased end-to-end headers only, with string values (what goes into a head frame). */
export function endToEndHeaders(headers: LooseHeaders, drop: readonly string[] = []): HeaderMap {
  const named = connectionTokens(headers);
  const dropped = new Set(drop.map((d) => d.toLowerCase()));
  const out: HeaderMap = {};
  for (const [rawKey, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    const k = rawKey.toLowerCase();
    if (k.startsWith(':') || HOP_BY_HOP.has(k) || named.has(k) || dropped.has(k)) continue;
    const value = Array.isArray(v) ? v.map(String) : String(v);
    const prev = out[k];
    out[k] = prev === undefined ? value : ([] as string[]).concat(prev, value);
  }
  return out;
}

/** Whether an incoming Node request carries a body (framing headers are the only reliable signal). */
export function requestHasBody(headers: LooseHeaders): boolean {
  const te = headers['transfer-encoding'];
  if (te !== undefined && String(te) !== '') return true;
  const cl = headers['content-length'];
  return cl !== undefined && Number(cl) > 0;
}

/** Canonical form of an upstream URL for comparisons: parsed, default port dropped, no trailing slash on the path. */
export function normalizeUpstreamURL(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`upstream URL must be http(s): ${url}`);
  u.hash = '';
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${path}${u.search}`;
}

/** Where a tunnelled request goes: an origin, and the request-target sent to it as is. */
export interface UpstreamTarget {
  /** `http(s)://host[:port]` */
  origin: string;
  /** The upstream's base path, then the request's path and query, byte for byte. */
  path: string;
}

/** What undici accepts in a request-target: no controls, no space (it would split the request line). */
const BAD_TARGET_CHAR = /[^\u0021-\u00ff]/;

/**
 * The request actually dialed: the upstream's origin, and its base path followed by the request's path+query exactly as
 * the gateway authorized it. Nothing is resolved or re-encoded: `new URL()` would turn `/a/%2e%2e/b` into `/b` and
 * `{` into `%7B`, and read `//other-host/` as another origin. Kept apart from the origin, the path can only ever be a
 * path on the upstream, and the upstream sees the path the policy saw.
 */
export function joinUpstreamURL(upstreamURL: string, pathAndQuery: string): UpstreamTarget {
  if (!pathAndQuery.startsWith('/')) throw new Error(`request path must start with "/": ${pathAndQuery}`);
  if (BAD_TARGET_CHAR.test(pathAndQuery)) throw new Error('request path contains a control character or a space');
  const base = new URL(normalizeUpstreamURL(upstreamURL));
  const basePath = base.pathname === '/' ? '' : base.pathname;
  return { origin: base.origin, path: `${basePath}${pathAndQuery}` };
}

/**
 * Sends a tunnel stream's request as an HTTP request to `target` and streams the response back into the stream —
 * the one job both ends of the tunnel do (the agent dialling an upstream it serves, the hub replaying a published
 * request on its own listener). Only a stream that ended abnormally before its response was sent in full aborts the
 * request; a completed one is left alone (aborting it is wasted work and can cut a keep-alive connection).
 * `describeError` turns a failure into the RESET reason (and logs it, as the caller sees fit).
 */
export async function forwardStreamAsHTTP(
  stream: TunnelStream,
  target: UpstreamTarget,
  headers: HeaderMap,
  dispatcher: Dispatcher,
  describeError: (err: Error & { code?: string }, phase: 'request' | 'response') => string,
): Promise<void> {
  const head = stream.requestHead;
  if (!head.hasBody) stream.readable.resume();
  const ac = new AbortController();
  stream.once('close', () => {
    if (stream.error && !stream.writable.writableFinished) ac.abort(stream.error);
  });
  try {
    // dispatcher.request, not undici's request(url): that one parses the URL and so normalizes the path.
    const res = await dispatcher.request({
      origin: target.origin,
      path: target.path,
      method: head.method as Dispatcher.HttpMethod,
      headers,
      body: head.hasBody ? stream.readable : undefined,
      signal: ac.signal,
    });
    if (stream.closed) {
      res.body.destroy();
      return;
    }
    stream.respond({ status: res.statusCode, headers: endToEndHeaders(res.headers) });
    // Chunk by chunk: an SSE event goes out as DATA as soon as undici hands it over.
    pipeline(res.body, stream.writable, (err) => {
      if (err && !stream.closed) stream.reset('UPSTREAM_FAILED', describeError(err, 'response'));
    });
  } catch (err) {
    if (stream.closed) return;
    stream.reset('UPSTREAM_FAILED', describeError(err as Error, 'request'));
  }
}
