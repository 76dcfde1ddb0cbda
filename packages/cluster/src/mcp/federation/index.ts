import { Agent } from 'undici';
import type { GatewayDeps } from '../../gateway/deps.js';
import type { ServiceIndex } from '../../gateway/service-index.js';
import { Federation } from './federation.js';
import { HopGrants } from './internal-hop.js';

export { Federation, unionCapabilities } from './federation.js';
export { HopGrants, HOP_HEADER } from './internal-hop.js';

export interface FederationOptions {
  deps: GatewayDeps;
  index: ServiceIndex;
  clusterUrl: () => string;
  selfURL: () => string;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

function defaultLog(msg: string, fields?: Record<string, unknown>): void {
  console.warn(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`);
}

/**
 * Federated MCP Services (`spec.mcp.federation`): the member-hop stage (after route, before authentication)
 * and the federated endpoint as an in-cluster upstream.
 */
export function registerFederation(o: FederationOptions): Federation {
  const grants = new HopGrants();
  (o.deps.afterRoute ??= []).push(grants.stage((member) => `${o.clusterUrl()}/svc/${member}/mcp`));
  // Member streams (GET, long tool calls) stay open as long as the downstream ones: no body timeout.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: null, bodyTimeout: 0 });
  const federation = new Federation({ index: o.index, grants, selfURL: o.selfURL, dispatcher, log: o.log ?? defaultLog });
  o.deps.localUpstream = (ctx) => federation.handle(ctx);
  const close = federation.close.bind(federation);
  federation.close = () => {
    close();
    void dispatcher.destroy().catch(() => undefined);
  };
  return federation;
}
