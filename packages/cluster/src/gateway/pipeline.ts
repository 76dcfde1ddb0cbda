import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';
import { RequestContext, type GatewayContext } from './context.js';
import type { GatewayDeps, GatewayHooks } from './deps.js';
import { buildAccessLog } from './access-log.js';
import { jsonRpcIdOf, renderGatewayError } from './errors.js';
import { upstreamRequestHeaders } from './headers.js';
import { inflightStage } from './request-limits.js';
import { authnStage } from './stages/authn.js';
import { authorizeStage } from './stages/authorize.js';
import { bufferStage } from './stages/buffer.js';
import { pluginsStage } from './stages/plugins.js';
import { routeStage } from './stages/route.js';
import { upstreamStage } from './stages/upstream.js';

export type Stage = (ctx: GatewayContext) => void | Promise<void>;

/** Small JSON bodies are read on the error path only, to answer with the request's JSON-RPC id. */
const ERROR_PEEK_LIMIT = 64 * 1024;

async function peekJsonRpcId(ctx: GatewayContext): Promise<void> {
  if (ctx.jsonRpcId !== undefined || ctx.body || ctx.req.readableEnded || ctx.req.readableDidRead) return;
  if (!String(ctx.req.headers['content-type'] ?? '').includes('json')) return;
  try {
    await ctx.requestBody.read(ERROR_PEEK_LIMIT);
    ctx.jsonRpcId = jsonRpcIdOf(ctx.requestBody.json());
  } catch {
    /* not JSON-RPC, or too big: plain JSON error */
  }
}

const REQUEST = Symbol('gateway request');
type ResponseOfRequest = ServerResponse & { [REQUEST]?: GatewayContext };

function abortUnfinished(this: ServerResponse): void {
  if (!this.writableFinished) (this as ResponseOfRequest)[REQUEST]?.abort.abort();
}

/** The built-in stages, in design.md §5 order; startCluster lays them out with the subsystems' own (cluster.ts). */
export function coreStages(deps: GatewayDeps) {
  return {
    route: routeStage(deps),
    authenticate: authnStage(deps),
    limitInflight: inflightStage(deps),
    buffer: bufferStage,
    authorize: authorizeStage(deps),
    plugins: pluginsStage(deps),
    upstream: upstreamStage(deps),
  } satisfies Record<string, Stage>;
}

/** What the gateway runs: the stages in order, and the hooks that watch every request. */
export interface GatewayPlan { stages: Stage[]; hooks: GatewayHooks[] }

/**
 * The gateway pipeline runner (fastify's hooks.js shape): each stage of the plan runs in turn until one responds
 * or throws; the AccessLog is written in `finally`, so every request — denied and failed ones too — is logged.
 */
export function createGateway(deps: GatewayDeps, plan: GatewayPlan) {
  const { stages, hooks } = plan;

  return async function handle(req: IncomingMessage, res: ServerResponse, target: { service: string; namespace: string; path: string }): Promise<void> {
    const ctx = new RequestContext(req, res, target, upstreamRequestHeaders(req, deps.limits?.trustedProxyHops));
    // Client gone before we finished: abort the upstream request at once. One shared listener (no closure per
    // request) finds the request through the response.
    (res as ResponseOfRequest)[REQUEST] = ctx;
    res.on('close', abortUnfinished);
    for (const h of hooks) h.onRequest?.(ctx);
    try {
      for (const stage of stages) {
        // Most stages are synchronous: awaiting their `undefined` would still cost a promise and a microtask turn each.
        const pending = stage(ctx);
        if (pending) await pending;
        if (ctx.responded) break;
      }
    } catch (err) {
      if (ctx.abort.signal.aborted && !(err instanceof OcteliumError)) {
        ctx.responseStatus ||= 499; // client closed request (nginx's convention) — nothing left to answer
      } else {
        const e = err instanceof OcteliumError ? err : new OcteliumError('INTERNAL', 'internal gateway error');
        if (!(err instanceof OcteliumError)) {
          if (deps.faults) deps.faults.record('gateway', err, ctx.requestId);
          else console.error('gateway internal error:', err);
        }
        if (!res.headersSent) await peekJsonRpcId(ctx);
        const extra = Object.assign({}, ...hooks.map((h) => h.errorHeaders?.(ctx, e.httpStatus) ?? {})) as Record<string, string>;
        renderGatewayError(ctx, e, extra);
      }
    } finally {
      for (const c of ctx.cleanups) c();
      const log = deps.accessLogs.record(buildAccessLog(ctx), ctx);
      for (const h of hooks) h.onResponse?.(ctx, log);
    }
  };
}
