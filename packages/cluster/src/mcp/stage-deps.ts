import type { Decision, GatewayContext } from '../gateway/context.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import type { ResourceIndicators } from '../oauth/index.js';
import type { PolicyEngine } from '../policy/index.js';
import { corsHeaders } from './origin.js';
import { mcpState } from './request-state.js';
import type { SessionBindings } from './sessions.js';

export interface McpStageDeps {
  /** The gateway's own authorization decision function (the same one the authorize stage calls). */
  authorize(facts: RequestFacts): Decision;
  /** For `explain`: list visibility needs every rule's outcome, not only the decision. */
  policy: PolicyEngine;
  resources: ResourceIndicators;
  sessions: SessionBindings;
  clusterUrl: () => string;
}

export function headerValue(ctx: GatewayContext, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** CORS headers for a response the gateway writes itself, when the browser Origin passed the check. */
export function corsOf(ctx: GatewayContext): Record<string, string> {
  return corsHeaders(mcpState(ctx).originOk ? headerValue(ctx, 'origin') : undefined);
}

/** Who owns sessions created by this request: the user behind the token (never anything the client says). */
export function ownerOf(ctx: GatewayContext): string {
  return ctx.principal ? `user:${ctx.principal.user.metadata.uid}` : 'anonymous';
}
