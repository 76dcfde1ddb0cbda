import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NAME_RE, OcteliumError, identityProviderType, type IdentityProviderSpec, type Resource, type UserSpec } from '@octelium-ts/shared';
import type { IdentityService } from '../auth/identity.js';
import type { Principal } from '../auth/principal.js';
import { paramsOf, parseInput } from '../api/parse-input.js';
import { tryDecodeComponent } from '../api/uri-component.js';
import type { IdentityProviders } from '../idp/registry.js';
import { LoginError, type VerifiedIdentity } from '../idp/types.js';
import { readParams, sendHtml, sendJson } from '../oauth/http.js';
import { sourceKey } from '../oauth/source-address.js';
import type { PolicyEngine } from '../policy/index.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { BrowserAuth } from './browser-auth.js';
import { LOGIN_COOKIE, authCookie, clearAuthCookie, clearLoginCookie, loginCookie, readCookie } from './cookies.js';
import { errorPage, loginPage, messagePage, portalPage } from './pages.js';
import { PENDING_LOGIN_TTL_MS, PendingLogins, type PendingLogin } from './pending-logins.js';
import { reachableServices } from './portal-services.js';
import { CallbackParams, CliTokenForm, CsrfForm, LoginQuery } from './request-schemas.js';
import { safeRedirect } from './safe-redirect.js';

export const DEFAULT_BROWSER_SESSION_TTL_MS = 12 * 3600_000;
const CLI_SESSION_TTL_MS = 24 * 3600_000;
const CLI_CODE_TTL_MS = 60_000;

export interface WebDeps {
  store: ResourceStore;
  identity: IdentityService;
  idps: IdentityProviders;
  browser: BrowserAuth;
  policy: PolicyEngine;
  clusterUrl: () => string;
  /** Absolute lifetime of a browser Session; default 12 h. */
  sessionTtlMs?: number;
}

interface CliCode { challenge: string; token: string; session: Resource; user: Resource; expiresAt: number; createdAt: number }

/** One log line per refused login: who/what/why, never a token, code or secret. */
function logRefusal(req: IncomingMessage, where: string, reason: string, message: string): void {
  // The socket is gone (null) when a too-large body made the reader close the connection.
  const from = req.socket ? sourceKey(req) : 'a closed connection';
  console.warn(`login: refused ${where} from ${from}: ${reason}: ${message}`);
}

/**
 * Human login and the portal on the cluster host (design.md §7): `/login`, `/login/<idp>`, `/callback`,
 * `/logout`, `/portal` (+ session revoke), and `/login/token` where `octelium login` redeems its one-time code.
 * Every handler answers for itself: bad input is a 4xx page, never an exception into the listener.
 */
export function createWebRoutes(deps: WebDeps) {
  const pending = new PendingLogins();
  const cliCodes = new Map<string, CliCode>();
  const csrfKey = randomBytes(32);
  const ttl = deps.sessionTtlMs ?? DEFAULT_BROWSER_SESSION_TTL_MS;
  const cluster = () => deps.clusterUrl();

  const csrfFor = (session: Resource) => createHmac('sha256', csrfKey).update(session.metadata.name).digest('base64url');
  function csrfOk(session: Resource, value: string | undefined): boolean {
    const want = Buffer.from(csrfFor(session));
    const got = Buffer.from(value ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  function page(res: ServerResponse, status: number, html: string, headers: Record<string, string | string[]> = {}): void {
    // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with the page's own form
    // POSTs (Fetch §3.1), and the CSRF check could not tell them from a cross-site one.
    sendHtml(res, status, html, { 'referrer-policy': 'same-origin', ...headers } as Record<string, string>);
  }
  function see(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
    res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': '0', 'referrer-policy': 'no-referrer', ...headers });
    res.end();
  }

  function providersView() {
    return deps.idps.browserProviders().map((r) => ({ name: r.metadata.name, displayName: r.metadata.displayName ?? r.metadata.name, type: identityProviderType(r.spec as IdentityProviderSpec) }));
  }

  /** `GET /login`. */
  function login(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const q = parseInput(LoginQuery, paramsOf(url.searchParams), 'login parameters');
    const redirect = safeRedirect(q.redirect, cluster());
    if (q.redirect !== undefined && redirect === undefined) logRefusal(req, '/login', 'UNSAFE_REDIRECT', 'redirect is not a path of this cluster (ignored)');
    if (q.cli === undefined && deps.browser.authenticate(req)) return see(res, redirect ?? '/portal');
    const cli = q.cli !== undefined && q.cli_challenge ? { port: q.cli, challenge: q.cli_challenge } : undefined;
    page(res, 200, loginPage({ providers: providersView(), redirect, ...(cli ? { cli } : {}) }));
  }

  /** `GET /login/<idp>`: start the IdP's flow. */
  async function loginWith(req: IncomingMessage, res: ServerResponse, url: URL, rawName: string): Promise<void> {
    const name = tryDecodeComponent(rawName);
    const q = parseInput(LoginQuery, paramsOf(url.searchParams), 'login parameters');
    const found = name && NAME_RE.test(name) ? deps.idps.browser(name) : undefined;
    if (!found) {
      logRefusal(req, '/login/<idp>', 'UNKNOWN_IDP', `no identity provider "${String(name ?? rawName).slice(0, 80)}"`);
      return page(res, 404, errorPage('Unknown identity provider', `There is no identity provider "${String(name ?? rawName).slice(0, 80)}" on this cluster.`));
    }
    const redirect = safeRedirect(q.redirect, cluster());
    const cli = q.cli !== undefined && q.cli_challenge ? { port: q.cli, nonce: q.cli_challenge } : undefined;
    const entry = pending.add({ idp: found.idp.metadata.name, secrets: {}, redirect, cli, source: sourceKey(req) });
    if (!entry) return page(res, 503, errorPage('Busy', 'Too many sign-ins are in progress. Try again in a minute.'));
    try {
      const { url: to, secrets } = await found.adapter.start({ redirectUri: `${cluster()}/callback`, state: entry.state });
      entry.secrets = secrets;
      see(res, to, { 'set-cookie': loginCookie(cluster(), entry.state, PENDING_LOGIN_TTL_MS / 1000) });
    } catch (e) {
      pending.take(entry.state);
      const err = e instanceof LoginError ? e : new LoginError(502, 'Identity provider unavailable', (e as Error).message, 'IDP_UNAVAILABLE');
      logRefusal(req, '/login/<idp>', err.reason, err.message);
      if (err.status >= 500) deps.idps.record(found.idp.metadata.name, err.message);
      page(res, err.status, errorPage(err.title, err.message));
    }
  }

  /** `GET|POST /callback`: finish the flow, find the User, create the Session. */
  async function callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const raw = req.method === 'POST' ? await readParams(req) : paramsOf(url.searchParams);
    const q = parseInput(CallbackParams, raw, 'callback parameters');
    const state = q.state ?? q.RelayState;
    const clear = { 'set-cookie': clearLoginCookie(cluster()) };
    const fail = (status: number, title: string, reason: string, message: string) => {
      logRefusal(req, '/callback', reason, message);
      page(res, status, errorPage(title, message), clear);
    };
    if (!state) return fail(400, 'Sign-in failed', 'NO_STATE', 'The identity provider did not send the sign-in state back.');
    if (req.method === 'POST') return samlPost(req, res, state, raw as Record<string, string>, fail);
    // Login CSRF: the callback must reach the browser that started this login.
    if (readCookie(req, LOGIN_COOKIE) !== state) return fail(400, 'Sign-in failed', 'STATE_MISMATCH', 'This sign-in was not started in this browser (or it already finished). Start again.');
    const p = pending.take(state);
    if (!p) return fail(400, 'Sign-in expired', 'UNKNOWN_STATE', 'This sign-in is unknown, expired or already used. Start again.');
    const found = deps.idps.browser(p.idp);
    if (!found) return fail(400, 'Sign-in failed', 'UNKNOWN_IDP', `The identity provider "${p.idp}" is gone or disabled.`);
    const callbackURL = new URL(`${cluster()}/callback`);
    for (const [k, v] of url.searchParams) callbackURL.searchParams.append(k, v);
    let who: VerifiedIdentity;
    if (p.verified) who = p.verified;
    else try {
      who = await found.adapter.finish({ callback: callbackURL, form: req.method === 'POST' ? (raw as Record<string, string>) : undefined, redirectUri: `${cluster()}/callback`, state, secrets: p.secrets });
    } catch (e) {
      const err = e instanceof LoginError ? e : new LoginError(502, 'Sign-in failed', (e as Error).message, 'IDP_ERROR');
      if (err.reason === 'IDP_UNAVAILABLE') deps.idps.record(p.idp, err.message);
      return fail(err.status, err.title, err.reason, err.message);
    }
    deps.idps.record(p.idp, undefined);
    const user = humanUserByEmail(deps.store, who.email);
    if (!user) return fail(403, 'No account', 'NO_USER', `${who.email} has no account on this cluster (no HUMAN User with this email). Ask an admin to add one.`);
    if (p.cli) return finishCli(res, p, user, found.idp, who, clear);
    const { token } = deps.identity.createIdentityProviderSession(user, {
      type: 'CLIENTLESS', isBrowser: true, expiresAt: Date.now() + ttl, identityProvider: found.idp, identifier: who.identifier, email: who.email, via: 'login',
    });
    console.info(`login: ${user.metadata.name} signed in with ${p.idp} (browser)`);
    see(res, p.redirect ?? '/portal', { 'set-cookie': [clearLoginCookie(cluster()), authCookie(cluster(), token, ttl / 1000)] });
  }

  /**
   * SAML's HTTP-POST binding: the IdP's page POSTs the response here cross-site, and a SameSite=Lax cookie does not
   * come along on a cross-site POST. So the response is verified now, only the verified identity is kept with the
   * pending login, and the browser is sent to `GET /callback` — a top-level navigation, which does carry the login
   * cookie — where the login finishes with the usual checks (the cookie must match the state: login CSRF).
   */
  async function samlPost(req: IncomingMessage, res: ServerResponse, state: string, form: Record<string, string>, fail: (status: number, title: string, reason: string, message: string) => void): Promise<void> {
    const p = pending.peek(state);
    if (!p || p.verified) return fail(400, 'Sign-in expired', 'UNKNOWN_STATE', 'This sign-in is unknown, expired or already used. Start again.');
    const found = deps.idps.browser(p.idp);
    if (!found || found.adapter.type !== 'saml') return fail(400, 'Sign-in failed', 'UNKNOWN_IDP', `The identity provider "${p.idp}" is gone, disabled, or does not answer by POST.`);
    try {
      p.verified = await found.adapter.finish({ callback: new URL(`${cluster()}/callback`), form, redirectUri: `${cluster()}/callback`, state, secrets: p.secrets });
    } catch (e) {
      pending.take(state);
      const err = e instanceof LoginError ? e : new LoginError(502, 'Sign-in failed', (e as Error).message, 'IDP_ERROR');
      if (err.reason === 'IDP_UNAVAILABLE') deps.idps.record(p.idp, err.message);
      return fail(err.status, err.title, err.reason, err.message);
    }
    see(res, `/callback?state=${encodeURIComponent(state)}`);
  }

  function finishCli(res: ServerResponse, p: PendingLogin, user: Resource, idp: Resource, who: VerifiedIdentity, headers: Record<string, string>): void {
    const expiresAt = Date.now() + CLI_SESSION_TTL_MS;
    const { token, session } = deps.identity.createIdentityProviderSession(user, { type: 'CLIENT', isBrowser: false, expiresAt, identityProvider: idp, identifier: who.identifier, email: who.email, via: 'login' });
    for (const [k, c] of cliCodes) if (Date.now() - c.createdAt > CLI_CODE_TTL_MS) cliCodes.delete(k);
    const code = randomBytes(32).toString('base64url');
    cliCodes.set(code, { challenge: p.cli!.nonce, token, session, user, expiresAt, createdAt: Date.now() });
    console.info(`login: ${user.metadata.name} signed in with ${p.idp} (octelium CLI)`);
    // RFC 8252 §7.3: a loopback redirect to the port the CLI listens on; the code is useless without its verifier.
    see(res, `http://127.0.0.1:${p.cli!.port}/callback?code=${code}`, headers);
  }

  /** `POST /login/token`: the CLI redeems its one-time code with the PKCE verifier. */
  async function cliToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const f = parseInput(CliTokenForm, await readParams(req), 'token request');
    const c = f.code ? cliCodes.get(f.code) : undefined;
    if (f.code) cliCodes.delete(f.code);
    const ok = c && f.code_verifier && Date.now() - c.createdAt <= CLI_CODE_TTL_MS && createHash('sha256').update(f.code_verifier).digest('base64url') === c.challenge;
    if (!ok) {
      logRefusal(req, '/login/token', 'INVALID_CODE', 'unknown, expired or used code, or wrong verifier');
      if (c) deps.identity.endSession(c.session.metadata.name);
      throw new OcteliumError('UNAUTHENTICATED', 'unknown, expired or already used login code (or wrong verifier)');
    }
    sendJson(res, 200, { accessToken: c.token, expiresAt: new Date(c.expiresAt).toISOString(), session: c.session, user: c.user });
  }

  function requireSession(req: IncomingMessage, res: ServerResponse, back: string): Principal | undefined {
    const who = deps.browser.authenticate(req);
    if (!who) {
      see(res, `/login?redirect=${encodeURIComponent(back)}`, deps.browser.token(req) ? { 'set-cookie': clearAuthCookie(cluster()) } : {});
      return undefined;
    }
    return who;
  }

  /** A form POST from the portal: the session's CSRF value and a same-origin Origin. */
  async function checkedForm(req: IncomingMessage, who: Principal): Promise<boolean> {
    try {
      deps.browser.checkCsrf(req);
    } catch {
      return false;
    }
    const form = parseInput(CsrfForm, await readParams(req), 'form');
    return csrfOk(who.session!, form.csrf);
  }

  function portal(req: IncomingMessage, res: ServerResponse): void {
    const who = requireSession(req, res, '/portal');
    if (!who) return;
    const spec = who.user.spec as UserSpec;
    const sessions = deps.store.list('Session')
      .filter((s) => (s.status as { userRef?: { name: string } } | undefined)?.userRef?.name === who.user.metadata.name)
      .sort((a, b) => (b.metadata.createdAt ?? '').localeCompare(a.metadata.createdAt ?? ''))
      .map((s) => {
        const st = s.status as { type?: string; isBrowser?: boolean; oauth2?: { clientID?: string }; authentication?: { info?: { identityProvider?: { identityProviderRef?: { name: string } } } } };
        const idp = st.authentication?.info?.identityProvider?.identityProviderRef?.name;
        const via = st.oauth2?.clientID ? `MCP client ${st.oauth2.clientID}` : idp ? `${st.isBrowser ? 'browser' : 'CLI'} via ${idp}` : 'credential';
        return { name: s.metadata.name, type: st.type ?? '', createdAt: s.metadata.createdAt ?? '', expiresAt: (s.spec as { expiresAt?: string }).expiresAt, via, current: s.metadata.name === who.session!.metadata.name };
      });
    const display = [spec.info?.firstName, spec.info?.lastName].filter(Boolean).join(' ') || undefined;
    page(res, 200, portalPage({ user: who.user.metadata.name, email: spec.email, displayName: display, services: reachableServices(deps.store, deps.policy, who, cluster()), sessions, csrf: csrfFor(who.session!) }));
  }

  async function revoke(req: IncomingMessage, res: ServerResponse, rawName: string): Promise<void> {
    const who = requireSession(req, res, '/portal');
    if (!who) return;
    if (!(await checkedForm(req, who))) {
      logRefusal(req, '/portal revoke', 'CSRF', 'form not from this portal');
      return page(res, 403, errorPage('Forbidden', 'This form did not come from your portal (cross-site request refused).', { retry: '/portal' }));
    }
    const name = tryDecodeComponent(rawName) ?? '';
    const target = deps.store.get('Session', name);
    if (!target || (target.status as { userRef?: { name: string } } | undefined)?.userRef?.name !== who.user.metadata.name) {
      return page(res, 404, errorPage('No such session', 'You have no session by that name.', { retry: '/portal' }));
    }
    deps.identity.endSession(name);
    if (name === who.session!.metadata.name) return see(res, '/login', { 'set-cookie': clearAuthCookie(cluster()) });
    see(res, '/portal');
  }

  async function logout(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const who = deps.browser.authenticate(req);
    if (req.method === 'GET') {
      if (!who) return see(res, '/login');
      return page(res, 200, messagePage('Sign out', 'Use the Sign out button on your portal.').replace('</p></section>', `</p><form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrfFor(who.session!)}"><button class="primary" type="submit">Sign out</button></form></section>`));
    }
    if (who) {
      if (!(await checkedForm(req, who))) {
        logRefusal(req, '/logout', 'CSRF', 'form not from this portal');
        return page(res, 403, errorPage('Forbidden', 'This sign-out did not come from your portal (cross-site request refused).', { retry: '/portal' }));
      }
      deps.identity.endSession(who.session!.metadata.name);
      console.info(`login: ${who.user.metadata.name} signed out`);
    }
    see(res, '/login', { 'set-cookie': clearAuthCookie(cluster()) });
  }

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const only = (...m: string[]) => {
      if (m.includes(method)) return true;
      res.writeHead(405, { allow: m.join(', '), 'content-length': '0' }).end();
      return false;
    };
    if (path === '/login') return void (only('GET', 'HEAD') && login(req, res, url));
    if (path === '/login/token') return void (only('POST') && (await cliToken(req, res)));
    if (path.startsWith('/login/') && path.indexOf('/', 7) < 0) return void (only('GET', 'HEAD') && (await loginWith(req, res, url, path.slice(7))));
    if (path === '/callback') return void (only('GET', 'POST') && (await callback(req, res, url)));
    if (path === '/logout') return void (only('GET', 'POST') && (await logout(req, res)));
    if (path === '/portal' || path === '/portal/') return void (only('GET', 'HEAD') && portal(req, res));
    const m = /^\/portal\/sessions\/([^/]+)\/revoke$/.exec(path);
    if (m) return void (only('POST') && (await revoke(req, res, m[1])));
    page(res, 404, errorPage('Not found', `Nothing at ${path.slice(0, 100)}.`));
  }

  /** Every failure is a page (or JSON for /login/token) with a 4xx, or a logged 500: nothing reaches the listener. */
  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      await route(req, res, url);
    } catch (e) {
      if (res.headersSent) return void res.destroy();
      const status = e instanceof OcteliumError ? e.httpStatus : 500;
      if (status >= 500) console.error(`web: ${req.method} ${url.pathname} failed:`, e);
      else logRefusal(req, url.pathname, e instanceof OcteliumError ? e.code : 'ERROR', (e as Error).message);
      if (url.pathname === '/login/token') return sendJson(res, status, e instanceof OcteliumError ? e.toJSON() : { error: { code: 'OCT_ERR_INTERNAL', message: 'internal error' } });
      page(res, status, errorPage(status >= 500 ? 'Something went wrong' : 'Bad request', status >= 500 ? 'An internal error occurred; it was logged.' : (e as Error).message));
    }
  }

  /** Paths this handler owns on the cluster host. */
  const owns = (path: string) => path === '/login' || path.startsWith('/login/') || path === '/callback' || path === '/logout' || path === '/portal' || path.startsWith('/portal/');

  return { handle, owns, pendingCount: () => pending.size };
}

/** The enabled HUMAN User whose `spec.email` is `email` (compared case-insensitively; exactly one). */
export function humanUserByEmail(store: ResourceStore, email: string): Resource | undefined {
  const want = email.trim().toLowerCase();
  const users = store.list('User').filter((u) => {
    const s = u.spec as UserSpec;
    return s.type === 'HUMAN' && !s.isDisabled && s.email?.toLowerCase() === want;
  });
  return users.length === 1 ? users[0] : undefined;
}
