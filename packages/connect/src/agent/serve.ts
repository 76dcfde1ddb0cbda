import { pipeline } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { endToEndHeaders, joinUpstreamURL, normalizeUpstreamURL, type TunnelStream } from '@octelium-ts/shared';

export interface ServeContext {
  /** Service → upstream URLs this agent was told it may dial (from WELCOME / SERVICES). */
  accepted: Map<string, Set<string>>;
  dispatcher: Dispatcher;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Serves one hub → agent stream: dials the Service's upstream on this host and streams the response back.
 * The agent is not an open proxy: it only dials an upstream URL the hub accepted for a Service in the handshake (or a
 * later SERVICES update), whatever the request head says.
 */
export async function serveStream(stream: TunnelStream, ctx: ServeContext): Promise<void> {
  const head = stream.requestHead;
  if (head.kind !== 'serve') return stream.reset('REFUSED', 'this agent only serves; it does not accept published streams');
  let upstream = '';
  try {
    upstream = normalizeUpstreamURL(head.upstreamURL ?? '');
  } catch {
    // refused below
  }
  const allowed = ctx.accepted.get(head.service);
  if (!allowed || !allowed.has(upstream)) {
    ctx.log('refused a request for an upstream this agent does not serve', { service: head.service, upstream: head.upstreamURL });
    return stream.reset('REFUSED', `this agent does not serve ${head.upstreamURL ?? '(no upstream)'} for Service ${head.service}`);
  }
  let target: string;
  try {
    target = joinUpstreamURL(upstream, head.path);
  } catch (err) {
    return stream.reset('REFUSED', (err as Error).message);
  }
  if (!head.hasBody) stream.readable.resume();

  // A RESET from the hub (client gone), a local stream error or a lost connection aborts the local request, which
  // closes its socket. A stream that completed normally (`error` unset), or whose response had already been sent in
  // full, leaves the request alone: it is finished, and its keep-alive connection is reused.
  const ac = new AbortController();
  stream.once('close', () => {
    if (stream.error && !stream.writable.writableFinished) ac.abort(stream.error);
  });
  try {
    const res = await request(target, {
      method: head.method as Dispatcher.HttpMethod,
      headers: endToEndHeaders(head.headers),
      body: head.hasBody ? stream.readable : undefined,
      signal: ac.signal,
      dispatcher: ctx.dispatcher,
    });
    if (stream.closed) {
      res.body.destroy();
      return;
    }
    stream.respond({ status: res.statusCode, headers: endToEndHeaders(res.headers) });
    // Chunk by chunk: an SSE event written upstream goes out as DATA as soon as undici hands it over.
    pipeline(res.body, stream.writable, (err) => {
      if (err && !stream.closed) stream.reset('UPSTREAM_FAILED', `upstream response failed: ${err.message}`);
    });
  } catch (err) {
    if (stream.closed) return;
    const e = err as Error & { code?: string };
    const msg = e.message || e.code || 'request failed';
    const reason = `${target}: ${msg}${e.code && !msg.includes(e.code) ? ` (${e.code})` : ''}`;
    ctx.log('upstream request failed', { service: head.service, error: reason });
    stream.reset('UPSTREAM_FAILED', reason);
  }
}
