import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayStage } from '../gateway/deps.js';
import { checkHostAndOrigin, preflightHeaders } from './origin.js';
import { protectedResourceMetadata, sendMetadata } from './prm.js';
import { mcpState } from './request-state.js';
import { PRM_PREFIX, resourceOfMetadataRequest } from './resource-url.js';
import { mcpSettings } from './settings.js';
import { headerValue, type McpStageDeps } from './stage-deps.js';

/**
 * After route, before authentication — what must work without (or before checking) a credential:
 * Host/Origin (DNS rebinding → 403), CORS preflight, and RFC 9728 metadata on the Service host.
 */
export function mcpEdgeStage(d: McpStageDeps): GatewayStage {
  return function mcpEdge(ctx: GatewayContext): void {
    const settings = mcpSettings(ctx.entry!.spec);
    if (!settings) return;
    const problem = checkHostAndOrigin(ctx.req, settings, d.clusterUrl());
    if (problem) throw new OcteliumError('ORIGIN_NOT_ALLOWED', problem);
    mcpState(ctx).originOk = true;
    const origin = headerValue(ctx, 'origin');
    if (ctx.req.method === 'OPTIONS' && origin && ctx.req.headers['access-control-request-method']) {
      respondDirect(ctx, 204, preflightHeaders(origin));
      return;
    }
    const path = (ctx.req.url ?? '/').split('?')[0];
    if ((ctx.req.method === 'GET' || ctx.req.method === 'OPTIONS') && (path === PRM_PREFIX || path.startsWith(PRM_PREFIX + '/'))) {
      const doc = protectedResourceMetadata(resourceOfMetadataRequest(ctx.req, d.clusterUrl()), d.clusterUrl(), settings, ctx.service!.metadata.name);
      sendMetadata(ctx.req, ctx.res, doc);
      ctx.responded = true;
      ctx.responseStatus = ctx.res.statusCode;
      ctx.responseContentType = 'application/json';
    }
  };
}

function respondDirect(ctx: GatewayContext, status: number, headers: Record<string, string>): void {
  ctx.responded = true;
  ctx.responseStatus = status;
  ctx.res.writeHead(status, { ...headers, 'content-length': '0' }).end();
}
