import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';
import { buildFacts } from '../facts.js';

/** authorize: CEL policies decide (DENY beats ALLOW; no match = deny; errors = deny); then dynamic routing picks a config. */
export function authorizeStage(deps: GatewayDeps) {
  return function authorize(ctx: GatewayContext): void {
    // Built here once the body is settled (an MCP stage before may have built them already, for the same request).
    const facts = (ctx.facts ??= buildFacts(ctx));
    if (!ctx.anonymous) {
      // A beforeAuthorize stage may have decided already (MCP: one decision per JSON-RPC batch element).
      ctx.decision ??= deps.authorize(facts);
      if (!ctx.decision.allowed) {
        throw new OcteliumError('POLICY_DENIED', `access to Service "${ctx.service!.metadata.name}" denied (${ctx.decision.reason.type})`);
      }
    }
    const spec = ctx.entry!.spec;
    if (spec.dynamicConfig?.rules.length) {
      const picked = deps.selectDynamicConfig(ctx.service!, facts);
      const cfg = picked ? spec.dynamicConfig.configs.find((c) => c.name === picked) : undefined;
      // A dynamic config replaces the parts it sets (upstream, http, and so http.plugins); the rest stays from spec.config.
      if (cfg) {
        ctx.config = { ...ctx.config, ...(cfg.upstream ? { upstream: cfg.upstream } : {}), ...(cfg.http ? { http: cfg.http } : {}) };
        ctx.dynamicConfigName = cfg.name;
      }
    }
  };
}
