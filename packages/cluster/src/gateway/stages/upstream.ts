import { Agent } from 'undici';
import { OcteliumError, joinUpstreamURL, type Upstream } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { sendUpstreamResponse, type UpstreamResponse } from '../proxy.js';
import { requestUpstream } from '../upstream-http.js';
import { cappedRequestBody, streamedBodyCap } from '../request-limits.js';
import { DEFAULT_CONFIG } from '../../containers/workload.js';
import type { Lease } from '../../containers/endpoints.js';

let roundRobin = 0;

function pickEndpoint(u: Upstream): { url?: string; user?: string } {
  if (u.loadbalance) return u.loadbalance.endpoints[roundRobin++ % u.loadbalance.endpoints.length];
  return u; // its own url / user (read only): no copy per request
}

/** Maps undici failures onto design.md's 502 / 504. */
function upstreamError(err: unknown, timeoutMs: number): OcteliumError {
  if (err instanceof OcteliumError) return err;
  // The capped request body failed (413): undici reports the body stream's error as the request's cause.
  if ((err as { cause?: unknown }).cause instanceof OcteliumError) return (err as { cause: OcteliumError }).cause;
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new OcteliumError('UPSTREAM_TIMEOUT', `upstream did not answer within ${timeoutMs} ms`);
  }
  return new OcteliumError('UPSTREAM_FAILED', `upstream request failed: ${(err as Error).message || code}`);
}

/** pick upstream → inject upstream credential → proxy, streaming the response back. */
export function upstreamStage(deps: GatewayDeps) {
  // No per-origin connection cap: each open SSE stream holds a connection, and MCP clients keep one open per session.
  const agent = deps.agent ?? new Agent({ keepAliveTimeout: 30_000, connections: null, pipelining: 1 });
  return async function upstream(ctx: GatewayContext): Promise<void> {
    const local = deps.localUpstream?.(ctx);
    if (local) return sendUpstreamResponse(ctx, await local);
    const config = ctx.config!;
    const u = config.upstream;
    let lease: Lease | undefined;
    if (u?.container) {
      // A managed container: one of the config's ready replicas (503 naming why when none is ready).
      if (!deps.containers) throw new OcteliumError('UPSTREAM_NOT_CONNECTED', `Service "${ctx.service!.metadata.name}" runs a managed container, and this cluster has no container runtime`);
      const session = ctx.req.headers['mcp-session-id'];
      lease = deps.containers.acquire(ctx.service!.metadata.name, ctx.dynamicConfigName ?? DEFAULT_CONFIG, typeof session === 'string' ? session : undefined);
      ctx.cleanups.push(lease.release);
    } else if (!u || (!u.url && !u.user && !u.loadbalance)) {
      throw new OcteliumError('UPSTREAM_FAILED', `Service "${ctx.service!.metadata.name}" has no upstream`);
    }
    const ep = lease ? { url: lease.endpoint.url } : pickEndpoint(u!);
    // Most Services inject no upstream credential: no promise to wait for then.
    if (config.http?.auth) Object.assign(ctx.upstreamHeaders, await deps.upstreamAuth.headers(config.http.auth));
    const method = ctx.req.method ?? 'GET';
    const streamed = !ctx.body && method !== 'GET' && method !== 'HEAD';
    const body = ctx.body ?? (streamed ? cappedRequestBody(ctx, streamedBodyCap(ctx, deps)) : undefined);
    if (ctx.body) ctx.upstreamHeaders['content-length'] = String(ctx.body.length);
    const timeoutMs = ctx.entry!.timeoutMs;
    // A path plugin's removePrefix (or an ExtProc :path) may leave no leading "/".
    const path = ctx.upstreamPath.startsWith('/') ? ctx.upstreamPath : `/${ctx.upstreamPath}`;
    let response: UpstreamResponse;
    try {
      if (ep.user) {
        if (!deps.tunnel) throw new OcteliumError('UPSTREAM_NOT_CONNECTED', 'tunnel hub not running');
        response = await deps.tunnel.dispatch(ep.user, {
          service: ctx.service!.metadata.name, upstreamURL: ep.url ?? '', method, path,
          headers: ctx.upstreamHeaders, body: body as never, signal: ctx.abort.signal,
        });
      } else {
        // The tunnel's join (one bounded cache of parsed upstream URLs for both paths): base path + request target as is.
        const target = joinUpstreamURL(ep.url!, path);
        const exchange = requestUpstream(agent, {
          origin: target.origin, path: target.path, method: method as 'GET',
          headers: ctx.upstreamHeaders, body: body as never, headersTimeout: timeoutMs, bodyTimeout: 0,
        }, ctx.abort.signal);
        ctx.cleanups.push(exchange.dispose);
        const r = (response = await exchange.response);
        // A stateful MCP server keeps its sessions in one replica: later requests of the session go back to it.
        const sid = r.headers['mcp-session-id'];
        if (lease && typeof sid === 'string') deps.containers!.bindSession(sid, lease.endpoint.id);
      }
    } catch (err) {
      // The client went away: not an upstream failure. The pipeline logs it as 499 (client closed request).
      if (ctx.abort.signal.aborted) throw err;
      throw upstreamError(err, timeoutMs);
    }
    return sendUpstreamResponse(ctx, response);
  };
}
