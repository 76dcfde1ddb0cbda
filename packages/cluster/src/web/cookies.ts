import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { cookies } from '../oauth/http.js';

/** The browser Session cookie (design.md §7), holding an opaque Session token. */
export const AUTH_COOKIE = 'octelium_auth';
/** Binds a login in progress to the browser that started it (login CSRF): its value is the `state`. */
export const LOGIN_COOKIE = 'octelium_login';

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const v = cookies(req).get(name);
  return v && v.length <= 1024 ? v : undefined;
}

/**
 * `Domain=<cluster host>` makes the cookie reach `<svc>.<domain>` too (clientless host-form access). Browsers
 * refuse a Domain attribute for `localhost` and IP literals, so there the cookie stays host-only (the no-DNS
 * `/svc/<svc>/` form works; host-form Services ask for a login of their own).
 */
function domainAttr(clusterUrl: string): string {
  const host = new URL(clusterUrl).hostname;
  return host === 'localhost' || isIP(host.replace(/^\[|\]$/g, '')) || !host.includes('.') ? '' : `; Domain=${host}`;
}

export function authCookie(clusterUrl: string, token: string, maxAgeS: number): string {
  const secure = clusterUrl.startsWith('https:');
  return `${AUTH_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(maxAgeS))}${domainAttr(clusterUrl)}${secure ? '; Secure' : ''}`;
}

export function clearAuthCookie(clusterUrl: string): string {
  return authCookie(clusterUrl, '', 0);
}

export function loginCookie(clusterUrl: string, state: string, maxAgeS: number): string {
  const secure = clusterUrl.startsWith('https:');
  // Lax: it must come along on the IdP's top-level redirect back to /callback (a cross-site GET navigation).
  return `${LOGIN_COOKIE}=${state}; Path=/callback; HttpOnly; SameSite=Lax; Max-Age=${maxAgeS}${secure ? '; Secure' : ''}`;
}

export function clearLoginCookie(clusterUrl: string): string {
  return loginCookie(clusterUrl, '', 0);
}
