import { Transform, pipeline } from 'node:stream';
import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from './context.js';
import type { GatewayDeps } from './deps.js';
import { DEFAULT_LIMITS } from '../server/limits.js';
import { declaredTooLarge } from '../server/read-body.js';

/** The body cap of a request that is streamed upstream: the Service's `maxRequestSize`, else the cluster default. */
export function streamedBodyCap(ctx: GatewayContext, deps: GatewayDeps): number {
  return ctx.config?.http?.body?.maxRequestSize ?? deps.limits?.maxStreamedBodyBytes ?? DEFAULT_LIMITS.maxStreamedBodyBytes;
}

/**
 * The request body as a stream that fails with 413 once it passes `cap`: a declared Content-Length is refused
 * before anything is forwarded, a chunked body is counted as it flows (it has no length to check up front).
 */
export function cappedRequestBody(ctx: GatewayContext, cap: number): NodeJS.ReadableStream {
  const refused = declaredTooLarge(ctx.req, cap);
  if (refused) throw refused;
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      ctx.requestBytes = seen;
      if (seen > cap) done(new OcteliumError('BODY_TOO_LARGE', `request body exceeds the limit of ${cap} bytes`));
      else done(null, chunk);
    },
  });
  // pipeline (not pipe) so a client that resets mid-body errors the stream instead of leaving it open.
  pipeline(ctx.req, counter, () => undefined);
  return counter;
}

/**
 * In-flight gateway requests per user (anonymous callers: per client address), open SSE streams included:
 * one identity cannot take every socket and stream the cluster has. Past the limit: 429.
 */
export function inflightStage(deps: GatewayDeps) {
  const inflight = new Map<string, number>();
  return function limitInflight(ctx: GatewayContext): void {
    const max = deps.limits?.maxInflightPerUser ?? DEFAULT_LIMITS.maxInflightPerUser;
    const key = ctx.principal ? `user:${ctx.principal.user.metadata.uid ?? ctx.principal.user.metadata.name}` : `addr:${ctx.req.socket.remoteAddress ?? ''}`;
    const n = inflight.get(key) ?? 0;
    if (n >= max) throw new OcteliumError('RATE_LIMITED', `too many requests in flight for this identity (limit ${max}); retry when some have finished`);
    inflight.set(key, n + 1);
    ctx.cleanups.push(() => {
      const left = (inflight.get(key) ?? 1) - 1;
      if (left <= 0) inflight.delete(key);
      else inflight.set(key, left);
    });
  };
}
