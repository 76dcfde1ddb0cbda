import { Agent } from 'undici';
import type { GatewayDeps, GatewayStage } from '../../gateway/deps.js';
import type { ServiceIndex } from '../../gateway/service-index.js';
import { Federation } from './federation.js';
import { HopGrants } from './internal-hop.js';

export { Federation, unionCapabilities } from './federation.js';
export { HopGrants, HOP_HEADER } from './internal-hop.js';

export interface FederationOptions {
  index: ServiceIndex;
  clusterUrl: () => string;
  selfURL: () => string;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

function defaultLog(msg: string, fields?: Record<string, unknown>): void {
  console.warn(`${msg}${fields ? ' ' + JSON.stringify(fields) : ''}`);
}

/** What federation adds to the gateway; startCluster places each part (cluster.ts). */
export interface FederationParts {
  /** The member-hop stage: after route, before authentication (it names the caller of a member request). */
  memberHop: GatewayStage;
  /** The federated endpoint as an in-cluster upstream (GatewayDeps.localUpstream). */
  localUpstream: NonNullable<GatewayDeps['localUpstream']>;
  close(): void;
}

/** Federated MCP Services (`spec.mcp.federation`). */
export function registerFederation(o: FederationOptions): FederationParts {
  const grants = new HopGrants();
  // Member streams (GET, long tool calls) stay open as long as the downstream ones: no body timeout.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: null, bodyTimeout: 0 });
  const federation = new Federation({ index: o.index, grants, selfURL: o.selfURL, dispatcher, log: o.log ?? defaultLog });
  return {
    memberHop: grants.stage((member) => `${o.clusterUrl()}/svc/${member}/mcp`),
    localUpstream: (ctx) => federation.handle(ctx),
    close: () => {
      federation.close();
      void dispatcher.destroy().catch(() => undefined);
    },
  };
}
