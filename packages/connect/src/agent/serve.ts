import type { Dispatcher } from 'undici';
import { endToEndHeaders, forwardStreamAsHTTP, joinUpstreamURL, normalizeUpstreamURL, type TunnelStream, type UpstreamTarget } from '@octelium-ts/shared';

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
  let target: UpstreamTarget;
  try {
    target = joinUpstreamURL(upstream, head.path);
  } catch (err) {
    return stream.reset('REFUSED', (err as Error).message);
  }
  await forwardStreamAsHTTP(stream, target, endToEndHeaders(head.headers), ctx.dispatcher, (e, phase) => {
    if (phase === 'response') return `upstream response failed: ${e.message}`;
    const msg = e.message || e.code || 'request failed';
    const reason = `${target.origin}${target.path}: ${msg}${e.code && !msg.includes(e.code) ? ` (${e.code})` : ''}`;
    ctx.log('upstream request failed', { service: head.service, error: reason });
    return reason;
  });
}
