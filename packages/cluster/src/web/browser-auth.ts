import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { OcteliumError } from '@octelium-ts/shared';
import type { IdentityService } from '../auth/identity.js';
import type { Principal } from '../auth/principal.js';
import type { ResourceStore } from '../store/resource-store.js';
import { AUTH_COOKIE, readCookie } from './cookies.js';

export const DEFAULT_IDLE_TIMEOUT_MS = 60 * 60_000;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The `octelium_auth` cookie as a credential (design.md §7), for the gateway and the portal:
 * - a browser Session ends after `idleTimeoutMs` without a request (tracked in memory: a restart gives every
 *   Session a fresh idle window, never a longer absolute life);
 * - for unsafe methods the request must come from the Service's own origin or the cluster's (Origin, else
 *   Sec-Fetch-Site), so another site cannot ride the cookie (CSRF);
 * - a browser without a credential is sent to `/login?redirect=…`; API clients keep their 401.
 */
export class BrowserAuth {
  readonly #lastSeen = new Map<string, number>();

  constructor(
    private readonly identity: IdentityService,
    store: ResourceStore,
    private readonly clusterUrl: () => string,
    readonly idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS,
  ) {
    store.watch((c) => {
      if (c.type === 'DELETED' && c.resource.kind === 'Session') this.#lastSeen.delete(c.resource.metadata.name);
    });
  }

  /** The cookie's token, if one was sent. */
  token(req: IncomingMessage): string | undefined {
    return readCookie(req, AUTH_COOKIE) || undefined;
  }

  /** The Principal behind the cookie, or undefined (no cookie, revoked, expired, idle too long). */
  authenticate(req: IncomingMessage): Principal | undefined {
    const token = this.token(req);
    if (!token) return undefined;
    const p = this.identity.authenticateOpaque(token);
    if (!p?.session) return undefined;
    const name = p.session.metadata.name;
    const now = Date.now();
    const last = this.#lastSeen.get(name) ?? (Date.parse(p.session.metadata.createdAt ?? '') || now);
    if (now - last > this.idleTimeoutMs) {
      this.identity.endSession(name);
      return undefined;
    }
    this.#lastSeen.set(name, now);
    return p;
  }

  /** Origin check for a cookie-authenticated unsafe request; throws 403 when it came from another site. */
  checkCsrf(req: IncomingMessage): void {
    if (SAFE_METHODS.has(req.method ?? 'GET')) return;
    const origin = req.headers.origin;
    const own = requestOrigin(req);
    if (origin !== undefined) {
      if (origin === own || origin === new URL(this.clusterUrl()).origin) return;
      throw new OcteliumError('ORIGIN_NOT_ALLOWED', `a ${req.method} from ${origin.slice(0, 200)} may not use this browser's session (cross-site request)`);
    }
    // No Origin (older browsers on same-origin requests): Fetch Metadata still says where it came from.
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      throw new OcteliumError('ORIGIN_NOT_ALLOWED', `a ${req.method} from another site (${String(site).slice(0, 50)}) may not use this browser's session`);
    }
  }

  /** A top-level browser navigation (not fetch/XHR, not an API client). */
  wantsPage(req: IncomingMessage): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    return String(req.headers.accept ?? '').toLowerCase().includes('text/html');
  }

  /**
   * `/login?redirect=<where the browser was going>` on the cluster host, built from the normalised target: the
   * no-DNS form as a cluster path, the host form as that Service host's URL (safe-redirect.ts accepts both).
   */
  loginURL(req: IncomingMessage, target: { serviceName: string; namespaceName: string; upstreamPath: string }): string {
    const cluster = new URL(this.clusterUrl());
    const origin = new URL(requestOrigin(req));
    const svc = target.namespaceName === 'default' ? target.serviceName : `${target.serviceName}.${target.namespaceName}`;
    const onClusterHost = !origin.hostname.toLowerCase().endsWith(`.${cluster.hostname.toLowerCase()}`);
    const redirect = onClusterHost ? `/svc/${svc}${target.upstreamPath}` : `${origin.origin}${target.upstreamPath}`;
    return `${cluster.origin}/login?redirect=${encodeURIComponent(redirect)}`;
  }
}

/** The origin the browser addressed (scheme as seen by the listener; the Host header checked by routing). */
export function requestOrigin(req: IncomingMessage): string {
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  return `${scheme}://${req.headers.host ?? 'invalid'}`;
}
