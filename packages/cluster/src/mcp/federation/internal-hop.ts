import { randomBytes } from 'node:crypto';
import type { Resource } from '@octelium-ts/shared';
import type { Principal } from '../../auth/principal.js';
import type { GatewayContext } from '../../gateway/context.js';
import type { GatewayStage } from '../../gateway/deps.js';

/** The header a member request carries on its loopback hop; never accepted from anywhere else. */
export const HOP_HEADER = 'x-octelium-federation';

/** `principal` is absent on an anonymous federated Service: the hop then carries no identity (members must be anonymous too). */
interface Grant { principal?: Principal; federated: Resource; member: string; requestId: string }

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Member requests of a federated Service go through the gateway's own listener (loopback), so that the member's
 * whole pipeline applies exactly as if the caller had sent them: its policies, plugins, upstream credential,
 * tunnel, list filtering and AccessLog. The caller is already authenticated at the federated Service, and its
 * token may be bound to that Service (`aud`), so the hop carries a grant instead: 256 random bits that name the
 * caller in this process only, for one member and one downstream request, and die with that request.
 */
export class HopGrants {
  readonly #grants = new Map<string, Grant>();

  issue(g: Grant): { token: string; revoke: () => void } {
    const token = randomBytes(32).toString('base64url');
    this.#grants.set(token, g);
    return { token, revoke: () => this.#grants.delete(token) };
  }

  get size(): number {
    return this.#grants.size;
  }

  /**
   * After route, before authentication: a request bearing a grant for this very Service, from this host, becomes
   * the caller's. The audience is restated as the member (the caller's token was checked against the federated
   * Service, which names this member); scopes stay the token's, so the member's own scope check still applies.
   */
  stage(memberAudience: (member: string) => string): GatewayStage {
    return (ctx: GatewayContext): void => {
      const raw = ctx.req.headers[HOP_HEADER];
      if (raw === undefined) return;
      delete ctx.req.headers[HOP_HEADER];
      delete ctx.upstreamHeaders[HOP_HEADER];
      const g = typeof raw === 'string' ? this.#grants.get(raw) : undefined;
      const member = ctx.service?.metadata.name;
      // Unknown, foreign or remote: ignored, and the request is authenticated like any other (it has no token).
      if (!g || g.member !== member || !LOOPBACK.has(ctx.req.socket.remoteAddress ?? '')) return;
      if (g.principal) ctx.principal = { ...g.principal, ...(g.principal.audience ? { audience: [memberAudience(member)] } : {}) };
      ctx.federation = { service: g.federated, requestId: g.requestId };
    };
  }
}
