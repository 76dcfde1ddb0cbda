import { randomUUID } from 'node:crypto';
import { refOf, type AccessLog, type ObjectRef } from '@octelium-ts/shared';
import type { GatewayContext } from './context.js';

function ref(kind: string, name: string | undefined, uid?: string): ObjectRef | undefined {
  return name ? { apiVersion: 'core/v1', kind, name, ...(uid ? { uid } : {}) } : undefined;
}

/** The AccessLog of one finished request (design.md §6). Headers are never logged, so tokens cannot leak. */
export function buildAccessLog(ctx: GatewayContext): AccessLog {
  const endedAt = new Date();
  // A plugin that answered with an error status (Lua exit, ExtProc immediate 403, direct 4xx) denied the request;
  // so did one that failed (its condition or its code): plugins fail closed, the request never went upstream.
  const pluginDenied = ctx.responseStatus >= 400 && ctx.plugins.some((p) => p.outcome === 'responded' || p.outcome === 'exit' || p.outcome === 'error');
  const allowed = !pluginDenied && !ctx.error?.isDenial;
  const userRef = ctx.principal ? refOf(ctx.principal.user) : undefined;
  const serviceRef = ctx.service ? refOf(ctx.service) : ref('Service', ctx.serviceName);
  const reason = ctx.decision?.reason ?? (ctx.error && !allowed ? { type: ctx.error.code === 'OCT_ERR_UNAUTHENTICATED' ? 'UNAUTHENTICATED' : 'TYPE_UNKNOWN_REASON', details: { message: ctx.error.message } } : ctx.anonymous ? { type: 'ANONYMOUS' } : { type: 'TYPE_UNKNOWN_REASON' });
  const ua = ctx.req.headers['user-agent'];
  return {
    apiVersion: 'core/v1',
    kind: 'AccessLog',
    metadata: { id: ctx.requestId, createdAt: endedAt.toISOString(), ...(userRef ? { actorRef: userRef } : {}), ...(serviceRef ? { targetRef: serviceRef } : {}) },
    entry: {
      common: {
        startedAt: ctx.startedAt.toISOString(),
        endedAt: endedAt.toISOString(),
        status: allowed && ctx.service ? 'ALLOWED' : 'DENIED',
        mode: 'HTTP',
        reason,
        ...(userRef ? { userRef } : {}),
        ...(serviceRef ? { serviceRef } : {}),
        ...(ctx.namespace ? { namespaceRef: refOf(ctx.namespace) } : { namespaceRef: ref('Namespace', ctx.namespaceName) }),
        ...(ctx.principal?.session ? { sessionRef: refOf(ctx.principal.session) } : {}),
        isPublic: Boolean(ctx.entry?.spec.isPublic),
        isAnonymous: ctx.anonymous,
        ...(ctx.plugins.length ? { plugins: ctx.plugins } : {}),
        ...(ctx.error ? { error: { code: ctx.error.code, message: ctx.error.message } } : {}),
        ...(ctx.federation ? { federation: { serviceRef: refOf(ctx.federation.service), requestId: ctx.federation.requestId } } : {}),
      },
      info: {
        http: {
          request: {
            path: ctx.upstreamPath.split('?')[0],
            uri: ctx.upstreamPath,
            method: ctx.req.method ?? 'GET',
            ...(typeof ua === 'string' ? { userAgent: ua } : {}),
            bodyBytes: ctx.requestBytes,
            // What went upstream; when a plugin rewrote the body, what the policy saw as well.
            ...(ctx.bodyMap !== undefined ? { bodyMap: ctx.bodyMap } : {}),
            ...(ctx.requestBody.originalMap !== undefined ? { originalBodyMap: ctx.requestBody.originalMap } : {}),
          },
          response: {
            code: ctx.responseStatus,
            bodyBytes: ctx.responseBytes,
            ...(ctx.responseContentType ? { contentType: ctx.responseContentType } : {}),
            ...(ctx.responseBodyMap !== undefined ? { bodyMap: ctx.responseBodyMap } : {}),
          },
          httpVersion: ctx.req.httpVersion === '2.0' ? 'HTTP2' : 'HTTP11',
        },
      },
    },
  };
}

export const newRequestId = randomUUID;
