import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { endToEndHeaders, OcteliumError } from '@octelium-ts/shared';
import type { TunnelHub } from '../tunnel/index.js';
import { ERROR_HEADER, HEAD_HEADER } from './forward-client.js';
import { replicaTokenMatches } from './replica-auth.js';

interface ForwardedHead {
  user: string; service: string; upstreamURL: string; method: string; path: string;
  headers: Record<string, string | string[]>; hasBody: boolean;
}

function parseHead(raw: string | string[] | undefined): ForwardedHead | undefined {
  if (typeof raw !== 'string') return undefined;
  try {
    const h = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as ForwardedHead;
    const ok = typeof h.user === 'string' && typeof h.service === 'string' && typeof h.upstreamURL === 'string'
      && typeof h.method === 'string' && typeof h.path === 'string' && typeof h.headers === 'object' && h.headers !== null;
    return ok ? h : undefined;
  } catch {
    return undefined;
  }
}

function sendForwardError(res: ServerResponse, err: OcteliumError): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(err.httpStatus, { 'content-type': 'application/json', [ERROR_HEADER]: '1' }).end(JSON.stringify(err.toJSON()));
}

/**
 * The holding replica's end of forwarding: a sibling's request (authenticated by the replica token) goes to this
 * replica's own agents only (`hub.dispatch`), never on to a third replica, so a stale registry cannot make a loop.
 * The hub checks, as for a local request, that the upstream URL belongs to that Service and user.
 */
export function forwardHandler(hub: Pick<TunnelHub, 'dispatch'>, expectedToken: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!replicaTokenMatches(req.headers.authorization, expectedToken)) {
      return sendForwardError(res, new OcteliumError('UNAUTHENTICATED', 'not a replica of this cluster (wrong or missing replica token)'));
    }
    const head = parseHead(req.headers[HEAD_HEADER]);
    if (req.method !== 'POST' || !head) return sendForwardError(res, new OcteliumError('INVALID_ARGUMENT', 'malformed forwarded tunnel request'));
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(new Error('the forwarding replica went away'));
    });
    let upstream;
    try {
      upstream = await hub.dispatch(head.user, {
        service: head.service, upstreamURL: head.upstreamURL, method: head.method, path: head.path, headers: head.headers,
        body: head.hasBody ? req : undefined, signal: abort.signal,
      });
    } catch (err) {
      return sendForwardError(res, err instanceof OcteliumError ? err : new OcteliumError('UPSTREAM_FAILED', (err as Error).message));
    }
    res.writeHead(upstream.statusCode, endToEndHeaders(upstream.headers));
    res.flushHeaders();
    pipeline(upstream.body, res, () => {});
  };
}
