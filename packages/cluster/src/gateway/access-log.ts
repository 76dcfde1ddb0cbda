import { refOf, type AccessLog, type ObjectRef, type Resource } from '@octelium-ts/shared';
import type { GatewayContext } from './context.js';

type Common = AccessLog['entry']['common'];
type HttpRequestInfo = AccessLog['entry']['info']['http']['request'];
type HttpResponseInfo = AccessLog['entry']['info']['http']['response'];

function ref(kind: string, name: string | undefined): ObjectRef | undefined {
  return name ? { apiVersion: 'core/v1', kind, name } : undefined;
}

/**
 * The ref of a stored resource, made once per resource object: a stored resource is replaced, never changed, so its
 * ref is too. Every request's AccessLog names its user, session, Service and namespace; four new objects per
 * request were garbage for nothing. Frozen, since every log of that resource shares it.
 */
const refs = new WeakMap<Resource, ObjectRef>();
function refOfStored(r: Resource): ObjectRef {
  let out = refs.get(r);
  if (!out) refs.set(r, (out = Object.freeze(refOf(r))));
  return out;
}

/**
 * ISO-8601 text of an epoch millisecond, remembered for the last few: many requests start or end within the same
 * millisecond, and `toISOString` was a share of building each log. Slots by the millisecond's low bits, so a
 * request's start and end do not push each other out.
 */
const isoSlots: Array<{ ms: number; iso: string }> = Array.from({ length: 8 }, () => ({ ms: -1, iso: '' }));
function isoTime(ms: number): string {
  const slot = isoSlots[ms & 7];
  if (slot.ms !== ms) {
    slot.iso = new Date(ms).toISOString();
    slot.ms = ms;
  }
  return slot.iso;
}

function reasonOf(ctx: GatewayContext, allowed: boolean): Common['reason'] {
  if (ctx.decision) return ctx.decision.reason;
  if (ctx.error && !allowed) return { type: ctx.error.code === 'OCT_ERR_UNAUTHENTICATED' ? 'UNAUTHENTICATED' : 'TYPE_UNKNOWN_REASON', details: { message: ctx.error.message } };
  return ctx.anonymous ? { type: 'ANONYMOUS' } : { type: 'TYPE_UNKNOWN_REASON' };
}

/**
 * The AccessLog of one finished request (design.md §6). Headers are never logged, so tokens cannot leak.
 * Built once per request on the hot path: optional fields are assigned only when present (no spread of a
 * temporary object per field), in the order the JSON shows them.
 */
export function buildAccessLog(ctx: GatewayContext): AccessLog {
  const endedAt = isoTime(Date.now());
  // A plugin that answered with an error status (Lua exit, ExtProc immediate 403, direct 4xx) denied the request;
  // so did one that failed (its condition or its code): plugins fail closed, the request never went upstream.
  const pluginDenied = ctx.responseStatus >= 400 && ctx.plugins.some((p) => p.outcome === 'responded' || p.outcome === 'exit' || p.outcome === 'error');
  const allowed = !pluginDenied && !ctx.error?.isDenial;
  const userRef = ctx.principal ? refOfStored(ctx.principal.user) : undefined;
  const serviceRef = ctx.service ? refOfStored(ctx.service) : ref('Service', ctx.serviceName);

  const metadata: AccessLog['metadata'] = { id: ctx.requestId, createdAt: endedAt };
  if (userRef) metadata.actorRef = userRef;
  if (serviceRef) metadata.targetRef = serviceRef;

  const common = {
    startedAt: isoTime(ctx.startedAt),
    endedAt,
    status: allowed && ctx.service ? 'ALLOWED' : 'DENIED',
    mode: 'HTTP',
    reason: reasonOf(ctx, allowed),
  } as Common;
  if (userRef) common.userRef = userRef;
  if (serviceRef) common.serviceRef = serviceRef;
  const namespaceRef = ctx.namespace ? refOfStored(ctx.namespace) : ref('Namespace', ctx.namespaceName);
  if (namespaceRef) common.namespaceRef = namespaceRef;
  if (ctx.principal?.session) common.sessionRef = refOfStored(ctx.principal.session);
  common.isPublic = Boolean(ctx.entry?.spec.isPublic);
  common.isAnonymous = ctx.anonymous;
  if (ctx.plugins.length) common.plugins = ctx.plugins;
  if (ctx.error) common.error = { code: ctx.error.code, message: ctx.error.message };
  if (ctx.federation) common.federation = { serviceRef: refOf(ctx.federation.service), requestId: ctx.federation.requestId };

  const q = ctx.upstreamPath.indexOf('?');
  const request = { path: q < 0 ? ctx.upstreamPath : ctx.upstreamPath.slice(0, q), uri: ctx.upstreamPath, method: ctx.req.method ?? 'GET' } as HttpRequestInfo;
  const ua = ctx.req.headers['user-agent'];
  if (typeof ua === 'string') request.userAgent = ua;
  request.bodyBytes = ctx.requestBytes;
  // What went upstream; when a plugin rewrote the body, what the policy saw as well.
  const bodyMap = ctx.bodyMap;
  if (bodyMap !== undefined) request.bodyMap = bodyMap;
  const originalBodyMap = ctx.requestBody.originalMap;
  if (originalBodyMap !== undefined) request.originalBodyMap = originalBodyMap;

  const response: HttpResponseInfo = { code: ctx.responseStatus, bodyBytes: ctx.responseBytes };
  if (ctx.responseContentType) response.contentType = ctx.responseContentType;
  if (ctx.responseBodyMap !== undefined) response.bodyMap = ctx.responseBodyMap;

  return {
    apiVersion: 'core/v1',
    kind: 'AccessLog',
    metadata,
    entry: { common, info: { http: { request, response, httpVersion: ctx.req.httpVersion === '2.0' ? 'HTTP2' : 'HTTP11' } } },
  };
}
