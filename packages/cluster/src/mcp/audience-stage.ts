import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayStage } from '../gateway/deps.js';
import { mcpState } from './request-state.js';
import { mcpSettings } from './settings.js';
import type { McpStageDeps } from './stage-deps.js';

/**
 * RFC 8707 / RFC 9068 audience on every request, for every Service: a token minted for specific resources
 * (`aud`) is good only at those; cluster-wide tokens (no `aud`) keep working everywhere unless the Service sets
 * `mcp.requireAudience`. MCP Services also check the token's scopes (403 insufficient_scope → step-up).
 */
export function audienceStage(d: McpStageDeps): GatewayStage {
  return function audience(ctx: GatewayContext): void {
    const p = ctx.principal;
    if (!p) return;
    const spec = ctx.entry!.spec;
    const name = ctx.service!.metadata.name;
    const settings = mcpSettings(spec);
    if (p.audience ? !p.audience.some((a) => d.resources.audienceMatches(a, name, spec)) : settings?.requireAudience) {
      const description = p.audience ? `the token was issued for another resource, not Service "${name}"` : `Service "${name}" requires an audience-bound token`;
      mcpState(ctx).challenge = { error: 'invalid_token', description };
      throw new OcteliumError('UNAUTHENTICATED', description);
    }
    if (settings && p.scopes) {
      const missing = settings.scopes.filter((s) => !p.scopes!.includes(s));
      if (missing.length) {
        const description = `the token lacks scope ${missing.join(' ')}`;
        mcpState(ctx).challenge = { error: 'insufficient_scope', description, scopes: [...new Set([...p.scopes, ...settings.scopes])] };
        throw new OcteliumError('INSUFFICIENT_SCOPE', description);
      }
    }
  };
}
