import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';

/** Modes whose traffic is HTTP and can go through this L7 proxy. */
const HTTP_MODES = new Set(['HTTP', 'WEB', 'MCP', 'GRPC', 'KUBERNETES', 'LLM']);

/** route: Host / no-DNS path → Service (design.md §5, first stage). */
export function routeStage(deps: GatewayDeps) {
  return function route(ctx: GatewayContext): void {
    const name = ctx.namespaceName === 'default' ? ctx.serviceName : `${ctx.serviceName}.${ctx.namespaceName}`;
    const entry = deps.index.get(name);
    if (!entry || entry.spec.isDisabled || !HTTP_MODES.has(entry.spec.mode)) {
      throw new OcteliumError('SERVICE_NOT_FOUND', `no HTTP Service "${name}"`);
    }
    ctx.entry = entry;
    ctx.service = entry.service;
    ctx.namespace = deps.store.get('Namespace', ctx.namespaceName);
    ctx.config = entry.spec.config ?? {};
  };
}
