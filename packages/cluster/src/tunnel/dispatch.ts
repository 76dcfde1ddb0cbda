import type { Readable } from 'node:stream';
import { OcteliumError, TunnelStreamError, canonicalServiceName, endToEndHeaders, normalizeUpstreamURL, pump, type Resource } from '@octelium-ts/shared';
import type { AgentConnection } from './agent-conn.js';
import { upstreamsServedBy } from './services.js';
import type { TunnelRequest, TunnelResponse } from './index.js';

/**
 * Which Service and upstream a gateway request for `userName`'s tunnel is for, checked against the Service as
 * stored: the agent is only ever asked to dial an upstream the Service names for that user.
 */
export function resolveTunnelTarget(getService: (name: string) => Resource | undefined, userName: string, req: TunnelRequest): { service: string; target: string; upstreams: string[] } {
  const service = canonicalServiceName(req.service);
  let svc: Resource | undefined;
  try {
    svc = getService(service);
  } catch {
    svc = undefined;
  }
  const upstreams = svc ? upstreamsServedBy(svc, userName) : [];
  if (!upstreams.length) {
    throw new OcteliumError('UPSTREAM_FAILED', `Service ${service} is not served by user ${userName} through octelium connect`, { service, user: userName });
  }
  let target: string;
  try {
    target = normalizeUpstreamURL(req.upstreamURL);
  } catch {
    target = '';
  }
  if (!upstreams.includes(target)) {
    throw new OcteliumError('UPSTREAM_FAILED', `upstream ${req.upstreamURL} is not an upstream of Service ${service} for user ${userName}`, { service, user: userName });
  }
  return { service, target, upstreams };
}

/** Opens a serve stream to `conn`, sends the request (body streamed), and resolves with the response head and body. */
export async function sendToAgent(conn: AgentConnection, service: string, target: string, req: TunnelRequest): Promise<TunnelResponse> {
  const stream = conn.mux.openStream({
    kind: 'serve',
    service,
    upstreamURL: target,
    method: req.method.toUpperCase(),
    path: req.path.startsWith('/') ? req.path : `/${req.path}`,
    headers: endToEndHeaders(req.headers),
    hasBody: req.body !== undefined,
  });
  conn.servedStreams++;
  const signal = req.signal;
  const onAbort = () => stream.reset('CANCEL', 'client went away');
  if (signal) {
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  if (typeof req.body === 'string' || req.body instanceof Uint8Array) {
    // A buffered body goes out as DATA + END without a Writable (END follows the body even if it waits for credit).
    stream.writeChunk(Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body));
    stream.endChunks();
  } else if (req.body) {
    pump(req.body as Readable, stream.writable, (err) => {
      if (err && !stream.closed) stream.reset('CANCEL', `request body failed: ${err.message}`);
    });
  } else {
    stream.endChunks();
  }
  try {
    const head = await stream.responseHead;
    // The gateway takes the body through `attach` (no Readable per response); `body` stays for other consumers.
    return { statusCode: head.status, headers: head.headers, body: stream.readable, attach: (sink) => stream.attach(sink) };
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    const e = err as TunnelStreamError;
    const reason = err instanceof TunnelStreamError ? e.reason : (err as Error).message;
    throw new OcteliumError('UPSTREAM_FAILED', `upstream of ${service} via octelium connect failed: ${reason}`, { service, user: conn.user, agent: conn.id, code: e.code });
  }
}
