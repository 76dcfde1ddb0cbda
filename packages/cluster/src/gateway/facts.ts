import type { GatewayContext } from './context.js';
import type { RequestFacts } from './request-facts.js';
import { FORWARDING_HEADERS } from './headers.js';

/** Headers a policy or plugin must never see: they carry the client's own credentials. */
const HIDDEN = new Set(['authorization', 'x-octelium-auth', 'cookie', 'proxy-authorization']);

/** Builds the `ctx` that policies and plugins see, once per request. */
export function buildFacts(ctx: GatewayContext): RequestFacts {
  const headers: Record<string, string> = {};
  const incoming = ctx.req.headers;
  for (const k in incoming) {
    const v = incoming[k];
    if (v !== undefined && !HIDDEN.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  // Policies see the forwarding headers the gateway vouches for (headers.ts), never a client's own claim.
  for (const k of FORWARDING_HEADERS) {
    const v = ctx.upstreamHeaders[k];
    if (v === undefined) delete headers[k];
    else headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const q = ctx.upstreamPath.indexOf('?');
  const path = q < 0 ? ctx.upstreamPath : ctx.upstreamPath.slice(0, q);
  const query: Record<string, string> = {};
  if (q >= 0) for (const [k, v] of new URLSearchParams(ctx.upstreamPath.slice(q + 1))) query[k] = v;
  const http: RequestFacts['request']['http'] = { method: ctx.req.method ?? 'GET', path, uri: ctx.upstreamPath, scheme: 'http', host: ctx.req.headers.host ?? '', headers, query };
  // Assigned only when present (absent keys stay absent for `has()`), without a spread of a temporary object each.
  const bodyMap = ctx.bodyMap;
  if (bodyMap !== undefined) http.bodyMap = bodyMap;
  if (ctx.body) http.body = ctx.body.toString('utf8');
  return { user: ctx.principal?.user, session: ctx.principal?.session, service: ctx.service!, namespace: ctx.namespace, request: { http } };
}
