import { canonicalServiceName } from '@octelium-ts/shared';
import type { TunnelHub, TunnelRequest, TunnelResponse } from '../tunnel/index.js';
import { PeerUnreachableError, type ReplicaLinks } from './link.js';
import type { ReplicaRegistry } from './registry.js';

/** How long a request waits for a connected agent somewhere (one that is reconnecting after its replica died). */
const DEFAULT_FIND_MS = 1500;
const POLL_MS = 100;

/**
 * The gateway's tunnel dispatcher on a cluster of replicas: a request for an `upstream.user` Service goes to an
 * agent on this replica when there is one (no extra hop), else to the replica holding one (ReplicaLinks), else
 * it waits briefly for an agent to (re)appear anywhere, then the hub answers as it does alone (503 not connected).
 */
export class ReplicaRouter {
  constructor(
    private readonly hub: Pick<TunnelHub, 'dispatch' | 'isServing'>,
    private readonly registry: ReplicaRegistry,
    private readonly links: ReplicaLinks,
    private readonly findMs = DEFAULT_FIND_MS,
  ) {}

  async dispatch(userName: string, req: TunnelRequest): Promise<TunnelResponse> {
    let service: string;
    try {
      service = canonicalServiceName(req.service);
    } catch {
      return this.hub.dispatch(userName, req);
    }
    const deadline = Date.now() + this.findMs;
    let lastUnreachable: Error | undefined;
    for (;;) {
      if (this.hub.isServing(userName, service)) return this.hub.dispatch(userName, req);
      let holders: ReturnType<ReplicaRegistry['holders']> = [];
      try {
        holders = this.registry.holders(userName, service);
      } catch {
        holders = []; // the store is down: only local agents can serve now
      }
      for (const h of holders) {
        try {
          return await this.links.forward(h.url, userName, req);
        } catch (err) {
          if (!(err instanceof PeerUnreachableError)) throw err;
          lastUnreachable = err;
          this.registry.suspect(h.replicaId);
        }
      }
      if (req.signal?.aborted) throw req.signal.reason ?? new Error('aborted');
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    // Nobody holds an agent (or every holder is gone): the hub waits its own grace and answers 503 with the reason.
    if (lastUnreachable) process.stderr.write(`replicas: ${lastUnreachable.message}; no other replica holds an agent of ${userName} for ${service}\n`);
    return this.hub.dispatch(userName, req);
  }
}
