import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Sql } from '../store/sql.js';
import type { TunnelHub } from '../tunnel/index.js';
import { isReplicaLink, ReplicaLinks, type LinkTimeouts } from './link.js';
import { replicaToken } from './replica-auth.js';
import { ReplicaRegistry, type RegistryOptions } from './registry.js';
import { ReplicaRouter } from './router.js';

export { ReplicaRegistry } from './registry.js';
export { ReplicaRouter } from './router.js';
export { LeaderLease, type LeaseHooks, type LeaseTiming } from './leader-lease.js';

export interface ReplicaOptions extends RegistryOptions, LinkTimeouts {
  /** How long a request waits for an agent to appear on some replica; default 1.5 s. */
  findAgentMs?: number;
  /**
   * This process shares its listener with sibling workers (--workers, node:cluster), so the shared port cannot
   * address it: siblings link to a private loopback listener of its own instead.
   */
  privateListener?: boolean;
}

export interface Replicas {
  router: ReplicaRouter;
  registry: ReplicaRegistry;
  /** Takes a sibling's link upgrade on the tunnel endpoint; false when the upgrade is not one (an agent's). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  start(): Promise<void>;
}

/**
 * Connector-aware routing for a cluster of replicas (docs/scaling.md): registers this replica and its agents in the
 * store, accepts siblings' links on the tunnel endpoint, and gives the gateway a dispatcher that forwards to
 * whichever replica holds the agent.
 */
export function registerReplicas(deps: {
  sql: Sql; hub: TunnelHub; clusterSecret: string; advertiseURL: () => string;
  onClose: Array<() => void | Promise<void>>;
}, opts: ReplicaOptions = {}): Replicas {
  let privateURL: string | undefined;
  const registry = new ReplicaRegistry(deps.sql, () => privateURL ?? deps.advertiseURL(), () => deps.hub.agents(), opts);
  const links = new ReplicaLinks(replicaToken(deps.clusterSecret), deps.hub, opts);
  let server: Server | undefined;
  deps.onClose.push(() => registry.close(), () => links.close(), () => new Promise<void>((r) => (server ? server.close(() => r()) : r())));
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!isReplicaLink(req)) return false;
    links.accept(req, socket, head);
    return true;
  };
  const start = async () => {
    if (opts.privateListener) {
      server = createServer((_req, res) => void res.writeHead(404).end());
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        socket.on('error', () => socket.destroy());
        if (!upgrade(req, socket, head)) socket.destroy();
      });
      // exclusive: a node:cluster worker would otherwise share this port with its siblings too.
      await new Promise<void>((r) => server!.listen({ host: '127.0.0.1', port: 0, exclusive: true }, r));
      privateURL = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    }
    registry.start();
  };
  return { router: new ReplicaRouter(deps.hub, registry, links, opts.findAgentMs), registry, upgrade, start };
}
