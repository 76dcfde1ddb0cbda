import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { HeaderMap } from './frames.js';
import type { TunnelBodySink, TunnelStream } from './stream.js';
import { BoundedMap } from '../bounded-map.js';

/**
 * Hop-by-hop headers describe one TCP connection, not the exchange, so they never cross the tunnel (RFC 9110 §7.6.1).
 * `host` is dropped too: each side's HTTP client sets the Host of the URL it really dials (MCP servers check it).
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'expect', 'http2-settings',
]);

type LooseHeaders = Record<string, string | string[] | number | undefined>;

/** Adds the header names a Connection header value lists (they are hop-by-hop too) to `out`. */
function addConnectionTokens(value: string | string[] | number, out: Set<string>): Set<string> {
  for (const part of (Array.isArray(value) ? value.join(',') : String(value)).split(',')) {
    const t = part.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

/**
 * Lower-cased end-to-end headers only, with string values (what goes into a head frame). Runs two or three times
 * per tunnelled request, so each name is lower-cased once and the sets are built only when there is something in them.
 */
export function endToEndHeaders(headers: LooseHeaders, drop: readonly string[] = []): HeaderMap {
  const rawKeys = Object.keys(headers);
  const keys = rawKeys.map((k) => k.toLowerCase());
  let named: Set<string> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const v = headers[rawKeys[i]];
    if (keys[i] === 'connection' && v !== undefined) named = addConnectionTokens(v, named ?? new Set());
  }
  const dropped = drop.length ? new Set(drop.map((d) => d.toLowerCase())) : undefined;
  const out: HeaderMap = {};
  for (let i = 0; i < keys.length; i++) {
    const v = headers[rawKeys[i]];
    const k = keys[i];
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k) || named?.has(k) || dropped?.has(k)) continue;
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
  return parsedUpstream(url).normalized;
}

interface ParsedUpstream { normalized: string; origin: string; basePath: string }

/**
 * Both ends parse the same few upstream URLs on every request (the hub checks a request's upstream against the
 * Service, the agent against what it was told to serve, then joins the path): a WHATWG URL parse each time was a few
 * percent of the CPU per request. A Service names a handful of upstreams, so the parsed forms are remembered; the
 * bound keeps a peer that sends ever new URLs from growing it.
 */
const parsedUpstreams = new BoundedMap<string, ParsedUpstream>(1024);

function parsedUpstream(url: string): ParsedUpstream {
  const known = parsedUpstreams.get(url);
  if (known) return known;
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`upstream URL must be http(s): ${url}`);
  u.hash = '';
  const path = u.pathname.replace(/\/+$/, '');
  const normalized = `${u.protocol}//${u.host}${path}${u.search}`;
  // The base path of the normalized form, as joinUpstreamURL always used it (parsed again from the normalized URL).
  const base = new URL(normalized);
  const parsed = { normalized, origin: base.origin, basePath: base.pathname === '/' ? '' : base.pathname };
  parsedUpstreams.set(url, parsed);
  return parsed;
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
  const { origin, basePath } = parsedUpstream(upstreamURL);
  return { origin, path: `${basePath}${pathAndQuery}` };
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
  // No body: the peer's END is taken (and anything sent against the head dropped) without a Readable.
  if (!head.hasBody) stream.discard();
  const body = head.hasBody ? await requestBodyOf(stream, headers) : undefined;
  if (stream.closed) return; // reset while its body arrived
  // dispatch, not undici's request(url): that one parses the URL and so normalizes the path.
  try {
    dispatcher.dispatch({
      origin: target.origin,
      path: target.path,
      method: head.method as Dispatcher.HttpMethod,
      headers,
      body,
    }, new ForwardedExchange(stream, describeError));
  } catch (err) {
    if (!stream.closed) stream.reset('UPSTREAM_FAILED', describeError(err as Error, 'request'));
  }
}

/**
 * One forwarded request on undici's dispatch API: the response's chunks go from undici's parser straight into the
 * tunnel stream (TunnelStream#writeChunk), paused through the dispatch controller while the stream has no credit or
 * the connection is backpressured, resumed on the stream's `onwritable`. Before, they went through undici's body
 * Readable, pump() and the stream's Writable: a pause, a resume and several ticks per chunk, most of the agent's own
 * work on a download (docs/performance.md, "Tunnel, session 4").
 */
class ForwardedExchange implements Dispatcher.DispatchHandler {
  readonly #stream: TunnelStream;
  readonly #describe: (err: Error & { code?: string }, phase: 'request' | 'response') => string;
  #controller?: Dispatcher.DispatchController;
  #responded = false;
  #ended = false;

  constructor(stream: TunnelStream, describe: (err: Error & { code?: string }, phase: 'request' | 'response') => string) {
    this.#stream = stream;
    this.#describe = describe;
    stream.once('close', () => {
      // A stream reset (or a lost connection) before the response was sent in full: the upstream request goes too.
      if (stream.error && !this.#ended) this.#controller?.abort(stream.error);
    });
    stream.onwritable = () => this.#controller?.resume();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#stream.closed) controller.abort(this.#stream.error ?? new Error('tunnel stream closed'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#stream.closed) {
      controller.abort(this.#stream.error ?? new Error('tunnel stream closed'));
      return;
    }
    this.#responded = true;
    this.#stream.respond({ status: statusCode, headers: endToEndHeaders(headers) });
  }

  // Chunk by chunk: an SSE event goes out as DATA as soon as undici hands it over.
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#stream.writeChunk(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#stream.endChunks();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#ended = true;
    if (this.#stream.closed) return;
    this.#stream.reset('UPSTREAM_FAILED', this.#describe(err, this.#responded ? 'response' : 'request'));
  }
}

/** Bodies up to this declared length are read whole before the request goes on (see requestBodyOf). */
const WHOLE_BODY_MAX = 64 * 1024;

/**
 * The request body of an accepted stream, to send on (upstream, or down the agent's tunnel). One whose declared length
 * is small is read whole first: undici writes a Buffer together with the request head, and a tunnel stream sends it as
 * one DATA and END, where a streamed body costs a writer, listeners and a write per chunk. Its DATA frames arrive in
 * the same socket read as the head, so waiting for them adds no latency; a body longer than it said stops being read,
 * and the receiver refuses the mismatch as it would have while streaming. Anything else (no length, a large one)
 * streams as before, chunk by chunk. Resolves undefined when the stream closed first.
 */
export function requestBodyOf(stream: TunnelStream, headers: HeaderMap): Readable | Promise<Buffer | undefined> {
  const declared = headers['content-length'];
  const length = typeof declared === 'string' && /^\d{1,6}$/.test(declared) ? Number(declared) : -1;
  if (length < 0 || length > WHOLE_BODY_MAX) return stream.readable;
  return new Promise((resolve) => stream.attach(new WholeBody(length, resolve)));
}

/** Collects a small request body through TunnelStream#attach (no Readable for it); see requestBodyOf. */
class WholeBody implements TunnelBodySink {
  readonly #length: number;
  readonly #resolve: (body: Buffer | undefined) => void;
  #chunks: Buffer[] = [];
  #size = 0;
  #done = false;

  constructor(length: number, resolve: (body: Buffer | undefined) => void) {
    this.#length = length;
    this.#resolve = resolve;
  }

  chunk(c: Buffer): boolean {
    if (this.#done) return false;
    this.#chunks.push(c);
    this.#size += c.length;
    if (this.#size <= this.#length) return true;
    // Longer than it said: what arrived goes on, and the upstream's client refuses the length mismatch.
    this.#finish(Buffer.concat(this.#chunks));
    return false;
  }

  end(): void {
    this.#finish(this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#size));
  }

  fail(): void {
    this.#finish(undefined);
  }

  #finish(body: Buffer | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    this.#resolve(body);
  }
}
