import { splitServiceName, type Resource, type ServiceSpec } from '@octelium-ts/shared';
import type { Principal } from '../auth/principal.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import type { PolicyEngine } from '../policy/index.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { PortalService } from './pages.js';

/**
 * The Services a person may reach, for /portal, decided by the real policy engine on what a visit would be:
 * `GET /` by this User in this Session. Rules that read what such a visit lacks (an MCP tool name, a body) count
 * as "maybe", as in MCP list filtering: a Service is listed unless a DENY matched cleanly or no ALLOW could
 * match. The gateway still decides every real request; the list is a map, not the access control.
 * A browser Session is CLIENTLESS, so only `isPublic` Services are reachable at all (Octelium's rule).
 */
export function reachableServices(store: ResourceStore, policy: PolicyEngine, who: Principal, clusterUrl: string): PortalService[] {
  const clientless = (who.session?.status as { type?: string } | undefined)?.type === 'CLIENTLESS';
  const out: PortalService[] = [];
  for (const service of store.list('Service').sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const spec = service.spec as ServiceSpec;
    if ((spec as { isDisabled?: boolean }).isDisabled) continue;
    if (!spec.isAnonymous) {
      if (clientless && !spec.isPublic) continue;
      if (!mayReach(policy, visitFacts(store, service, who))) continue;
    }
    const base = `${clusterUrl}/svc/${service.metadata.name}/`;
    const mcp = spec.mode === 'MCP' || (spec as { mcp?: unknown }).mcp !== undefined;
    out.push({ name: service.metadata.name, mode: spec.mode ?? 'HTTP', url: base, ...(mcp ? { mcpURL: `${base}mcp` } : {}), ...(service.metadata.description ? { description: service.metadata.description } : {}) });
  }
  return out;
}

function visitFacts(store: ResourceStore, service: Resource, who: Principal): RequestFacts {
  return {
    user: who.user, session: who.session, service,
    namespace: store.get('Namespace', splitServiceName(service.metadata.name).namespace),
    request: { http: { method: 'GET', path: '/', uri: '/', scheme: 'http', host: '', headers: { accept: 'text/html' }, query: {} } },
  };
}

function mayReach(policy: PolicyEngine, facts: RequestFacts): boolean {
  const d = policy.explain(facts);
  if (d.allowed) return true;
  const undecided = (r: { error?: string; missing?: string[] }) => r.error !== undefined || r.missing !== undefined;
  if (d.rules.some((r) => r.effect === 'DENY' && r.matched && !undecided(r))) return false;
  return d.rules.some((r) => r.effect === 'ALLOW' && (r.matched || undecided(r)));
}
