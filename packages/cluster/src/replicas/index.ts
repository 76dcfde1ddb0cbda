import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Sql } from '../store/sql.js';
import type { TunnelHub } from '../tunnel/index.js';
import { ReplicaForwarder, type ForwardTimeouts } from './forward-client.js';
import { forwardHandler } from './forward-server.js';
import { FORWARD_PATH, replicaToken } from './replica-auth.js';
import { ReplicaRegistry, type RegistryOptions } from './registry.js';
import { ReplicaRouter } from './router.js';

export { ReplicaRegistry } from './registry.js';
export { ReplicaRouter } from './router.js';

export interface ReplicaOptions extends RegistryOptions, ForwardTimeouts {
  /** How long a request waits for an agent to appear on some replica; default 1.5 s. */
  findAgentMs?: number;
}

/**
 * Connector-aware routing for a cluster of replicas (docs/scaling.md): registers this replica and its agents in the
 * store, serves siblings' forwarded requests on FORWARD_PATH, and gives the gateway a dispatcher that forwards to
 * whichever replica holds the agent.
 */
export function registerReplicas(deps: {
  sql: Sql; hub: TunnelHub; clusterSecret: string; advertiseURL: () => string;
  routes: Map<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>>;
  onClose: Array<() => void | Promise<void>>;
}, opts: ReplicaOptions = {}): { router: ReplicaRouter; registry: ReplicaRegistry; start(): void } {
  const registry = new ReplicaRegistry(deps.sql, deps.advertiseURL, () => deps.hub.agents(), opts);
  const forwarder = new ReplicaForwarder(deps.clusterSecret, opts);
  deps.routes.set(FORWARD_PATH, forwardHandler(deps.hub, replicaToken(deps.clusterSecret)));
  deps.onClose.push(() => registry.close(), () => forwarder.close());
  return { router: new ReplicaRouter(deps.hub, registry, forwarder, opts.findAgentMs), registry, start: () => registry.start() };
}
