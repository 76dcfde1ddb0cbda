import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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
  /**
   * This process shares its listener with sibling workers (--workers, node:cluster), so the shared port cannot
   * address it: siblings forward to a private loopback listener of its own instead.
   */
  privateListener?: boolean;
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
}, opts: ReplicaOptions = {}): { router: ReplicaRouter; registry: ReplicaRegistry; start(): Promise<void> } {
  let privateURL: string | undefined;
  const registry = new ReplicaRegistry(deps.sql, () => privateURL ?? deps.advertiseURL(), () => deps.hub.agents(), opts);
  const forwarder = new ReplicaForwarder(deps.clusterSecret, opts);
  const handler = forwardHandler(deps.hub, replicaToken(deps.clusterSecret));
  deps.routes.set(FORWARD_PATH, handler);
  let server: Server | undefined;
  deps.onClose.push(() => registry.close(), () => forwarder.close(), () => new Promise<void>((r) => (server ? server.close(() => r()) : r())));
  const start = async () => {
    if (opts.privateListener) {
      server = createServer((req, res) => {
        if (req.url === FORWARD_PATH) return void handler(req, res);
        res.writeHead(404).end();
      });
      // exclusive: a node:cluster worker would otherwise share this port with its siblings too.
      await new Promise<void>((r) => server!.listen({ host: '127.0.0.1', port: 0, exclusive: true }, r));
      privateURL = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    }
    registry.start();
  };
  return { router: new ReplicaRouter(deps.hub, registry, forwarder, opts.findAgentMs), registry, start };
}
