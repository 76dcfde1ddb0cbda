import type { IdentityService } from '../auth/identity.js';
import type { IdentityProviders } from '../idp/registry.js';
import type { ReplayCache } from '../idp/replay-cache.js';
import type { BrowserAuth } from '../web/browser-auth.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { ClientRegistry } from './clients.js';
import type { AuthorizationState, RefreshTokens } from './grants.js';
import type { KeyRing } from './keyring.js';
import type { RateLimiter } from './rate-limit.js';
import type { ResourceIndicators } from './resource-indicators.js';

/** What the authorization server's endpoints share. */
export interface AsDeps {
  identity: IdentityService;
  keys: KeyRing;
  store: ResourceStore;
  /** The cluster URL: issuer of every token and base of every endpoint. */
  issuer: () => string;
  clients: ClientRegistry;
  state: AuthorizationState;
  refresh: RefreshTokens;
  resources: ResourceIndicators;
  /** Per-source-address budget of Dynamic Client Registrations. */
  registrations: RateLimiter;
  /**
   * Human identity (docs/identity.md), when the cluster has it: the consent page signs people in through their
   * IdentityProvider and takes the browser Session as who consents; the token endpoint takes workload assertions.
   */
  human?: { idps: IdentityProviders; browser: BrowserAuth; replay: ReplayCache };
}

/** Lifetime of one authorization grant (its Session and refresh tokens), bounded further by the auth token's expiry. */
export const GRANT_TTL_MS = 30 * 24 * 3600_000;

/** RFC 6749 §3.3 scope-token syntax, space separated. */
export function validScope(scope: string): boolean {
  return scope.split(' ').every((s) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s));
}
