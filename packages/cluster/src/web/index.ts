import type { IdentityService } from '../auth/identity.js';
import { IdentityProviders } from '../idp/registry.js';
import { ReplayCache } from '../idp/replay-cache.js';
import type { Sql } from '../store/sql.js';
import type { PolicyEngine } from '../policy/index.js';
import type { ResourceStore } from '../store/resource-store.js';
import { BrowserAuth } from './browser-auth.js';
import { createWebRoutes } from './routes.js';

export { BrowserAuth } from './browser-auth.js';
export { AUTH_COOKIE } from './cookies.js';

/** Human login settings (ClusterOptions.humanLogin; docs/identity.md). */
export interface HumanLoginConfig {
  /** Absolute lifetime of a browser Session (the `octelium_auth` cookie); default 12 h. */
  browserSessionTtlMs?: number;
  /** A browser Session unused this long ends; default 1 h. */
  idleTimeoutMs?: number;
}

/**
 * Human identity (design.md §7): IdentityProviders, `/login` + `/callback` + `/portal` + `/logout` on the cluster
 * host, and the cookie credential the gateway accepts.
 */
export function registerHumanIdentity(p: { store: ResourceStore; identity: IdentityService; policy: PolicyEngine; clusterUrl: () => string; config?: HumanLoginConfig; sql?: Sql }) {
  // SAML assertion IDs are remembered in the store, so a replay is refused by every replica.
  const idps = new IdentityProviders(p.store, p.clusterUrl, p.sql ? { replay: new ReplayCache(p.sql) } : {});
  const browser = new BrowserAuth(p.identity, p.store, p.clusterUrl, p.config?.idleTimeoutMs);
  const web = createWebRoutes({ store: p.store, identity: p.identity, idps, browser, policy: p.policy, clusterUrl: p.clusterUrl, sessionTtlMs: p.config?.browserSessionTtlMs });
  return { idps, browser, web, close: () => idps.close() };
}
