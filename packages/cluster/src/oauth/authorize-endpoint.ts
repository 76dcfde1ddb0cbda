import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError, identityProviderType, type IdentityProviderSpec, type Resource, type UserSpec } from '@octelium-ts/shared';
import { asOAuthError, OAuthError } from './errors.js';
import { consentPage, errorPage, type ConsentView } from './consent-page.js';
import { GRANT_TTL_MS, validScope, type AsDeps } from './deps.js';
import type { PendingAuthorization } from './grants.js';
import type { RegisteredClient } from './clients.js';
import { paramsOf } from '../api/parse-input.js';
import { cookies, readParams, redirect, sendHtml } from './http.js';
import { AuthorizeQuery, ConsentForm, parseParams } from './request-schemas.js';
import { sourceKey } from './source-address.js';

const MAX_LOGIN_FAILURES = 5;

function csrfCookieName(issuer: string): string {
  // `__Host-` pins the cookie to this exact origin, but browsers accept it only on https.
  return issuer.startsWith('https:') ? '__Host-oct_oauth_csrf' : 'oct_oauth_csrf';
}

function csrfCookie(issuer: string, value: string): string {
  const secure = issuer.startsWith('https:');
  return `${csrfCookieName(issuer)}=${encodeURIComponent(value)}; Path=${secure ? '/' : '/oauth2/'}; HttpOnly; SameSite=Strict; Max-Age=600${secure ? '; Secure' : ''}`;
}

/** Errors after the redirect URI is known go back to the client (RFC 6749 §4.1.2.1), with `iss` (RFC 9207). */
function redirectWithError(res: ServerResponse, issuer: string, redirectUri: string, state: string | undefined, error: string, description: string): void {
  const u = new URL(redirectUri);
  u.searchParams.set('error', error);
  u.searchParams.set('error_description', description);
  if (state !== undefined) u.searchParams.set('state', state);
  u.searchParams.set('iss', issuer);
  redirect(res, u.toString());
}

function redirectTarget(uri: string): string {
  const u = new URL(uri);
  return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : `${u.protocol}//${u.host}`;
}

/** What the consent page shows of the browser's signed-in person (a browser Session from an IdP login). */
function signedInView(deps: AsDeps, req: IncomingMessage): ConsentView['signedIn'] {
  const who = browserPrincipal(deps, req);
  if (!who) return undefined;
  const info = (who.session!.status as { authentication?: { info?: { identityProvider?: { identityProviderRef?: { name?: string } } } } }).authentication?.info?.identityProvider;
  const idp = info?.identityProviderRef?.name ? deps.store.get('IdentityProvider', info.identityProviderRef.name) : undefined;
  return { user: who.user.metadata.name, email: (who.user.spec as UserSpec).email, via: idp ? (idp.metadata.displayName ?? idp.metadata.name) : undefined, session: who.session!.metadata.name };
}

/** The browser Session behind the `octelium_auth` cookie, when it is one made by an IdP login. */
function browserPrincipal(deps: AsDeps, req: IncomingMessage) {
  const who = deps.human?.browser.authenticate(req);
  return who?.session && (who.session.status as { isBrowser?: boolean }).isBrowser === true ? who : undefined;
}

function renderConsent(deps: AsDeps, req: IncomingMessage, res: ServerResponse, p: PendingAuthorization, client: { kind: 'dcr' | 'cimd' }, status = 200, error?: string): void {
  const svc = p.resource ? deps.resources.resolve(p.resource) : undefined;
  // Each IdP link comes back here (safe-redirect.ts accepts this cluster path) with the same pending request.
  const back = `/oauth2/authorize?request_id=${encodeURIComponent(p.id)}`;
  const providers = (deps.human?.idps.browserProviders() ?? []).map((r) => ({
    displayName: r.metadata.displayName ?? r.metadata.name, type: identityProviderType(r.spec as IdentityProviderSpec),
    href: `/login/${encodeURIComponent(r.metadata.name)}?redirect=${encodeURIComponent(back)}`,
  }));
  sendHtml(res, status, consentPage({
    requestId: p.id, csrf: p.csrf, clientName: p.clientName, clientId: p.clientId, redirectTarget: redirectTarget(p.redirectUri),
    clientKind: client.kind, resource: p.resource, resourceName: svc?.metadata.name, scope: p.scope, error,
    signedIn: signedInView(deps, req), providers,
    // same-origin, not no-referrer: under no-referrer the page's own form POST carries `Origin: null` (Fetch §3.1)
    // and the Origin check of a cookie-authenticated consent could not tell it from a cross-site one.
  }), { 'set-cookie': csrfCookie(deps.issuer(), p.csrf), 'referrer-policy': 'same-origin' });
}

/** `GET /oauth2/authorize?request_id=…`: back from an IdP sign-in started on the consent page. */
async function resumeConsent(deps: AsDeps, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
  const p = deps.state.getPending(requestId);
  if (!p) return sendHtml(res, 400, errorPage('Request expired', 'This sign-in request is unknown or expired. Start again from the application.'));
  const client = await deps.clients.get(p.clientId).catch(() => undefined);
  if (!client) {
    deps.state.dropPending(p.id);
    return sendHtml(res, 400, errorPage('Unknown application', 'The application is no longer registered.'));
  }
  renderConsent(deps, req, res, p, client);
}

/** `GET /oauth2/authorize`: validate the request (OAuth 2.1 §4.1.1, PKCE S256 required, RFC 8707), then show consent. */
async function authorizeGet(deps: AsDeps, req: IncomingMessage, res: ServerResponse, q: AuthorizeQuery): Promise<void> {
  const issuer = deps.issuer();
  const clientId = q.client_id;
  if (!clientId && q.request_id) return resumeConsent(deps, req, res, q.request_id);
  if (!clientId) return sendHtml(res, 400, errorPage('Invalid request', 'client_id is missing.'));
  let client: RegisteredClient;
  try {
    client = await deps.clients.get(clientId);
  } catch (e) {
    return sendHtml(res, 400, errorPage('Unknown application', e instanceof OAuthError ? e.description : 'client lookup failed'));
  }
  // Until the redirect URI is known to be the client's own, errors are shown here, never redirected (open redirect).
  const asked = q.redirect_uri;
  const redirectUri = asked ?? (client.redirect_uris.length === 1 ? client.redirect_uris[0] : undefined);
  if (!redirectUri || !client.redirect_uris.includes(redirectUri)) {
    return sendHtml(res, 400, errorPage('Invalid redirect URI', 'redirect_uri is missing or is not one this application registered (exact match required).'));
  }
  const state = q.state;
  const fail = (error: string, d: string) => redirectWithError(res, issuer, redirectUri, state, error, d);
  if (q.response_type !== 'code') return fail('unsupported_response_type', 'only response_type=code is supported');
  if (!client.grant_types.includes('authorization_code')) return fail('unauthorized_client', 'this client did not register the authorization_code grant');
  const codeChallenge = q.code_challenge;
  if (!codeChallenge || q.code_challenge_method !== 'S256' || !/^[A-Za-z0-9\-._~]{43,128}$/.test(codeChallenge)) {
    return fail('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
  }
  const scope = q.scope;
  if (scope !== undefined && (!scope || !validScope(scope))) return fail('invalid_scope', 'malformed scope');
  const resources = q.resource;
  if (resources.length > 1) return fail('invalid_target', 'one resource per authorization request');
  const resource = resources[0];
  if (resource !== undefined && !deps.resources.resolve(resource)) return fail('invalid_target', `"${resource}" is not a Service of this cluster`);
  const pending = deps.state.addPending({
    clientId, clientName: client.client_name ?? clientId, redirectUri, state, scope, resource, codeChallenge,
    nonce: q.nonce,
  }, sourceKey(req));
  renderConsent(deps, req, res, pending, client);
}

/** Who consents: the signed-in browser Session (HUMAN users, through their IdP) or a pasted auth token. */
type Consenter = { user: Resource; credential?: Resource; expiresAt?: number; authentication?: Record<string, unknown> };

/**
 * `POST /oauth2/authorize`: the consent form. The person is the browser's signed-in Session (an IdP login) when
 * the form names it, else the auth token pasted into the form (workloads, accounts without an IdP).
 */
async function authorizePost(deps: AsDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const issuer = deps.issuer();
  const form = parseParams(ConsentForm, await readParams(req));
  const p = deps.state.getPending(form.request_id ?? '');
  if (!p) return sendHtml(res, 400, errorPage('Request expired', 'This sign-in request is unknown or expired. Start again from the application.'));
  const cookie = cookies(req).get(csrfCookieName(issuer));
  if (form.csrf !== p.csrf || cookie !== p.csrf) return sendHtml(res, 403, errorPage('Forbidden', 'The form did not come from this sign-in page (CSRF check failed).'));
  const client = await deps.clients.get(p.clientId).catch(() => undefined);
  if (!client) {
    deps.state.dropPending(p.id);
    return sendHtml(res, 400, errorPage('Unknown application', 'The application is no longer registered.'));
  }
  if (form.action !== 'allow') {
    deps.state.dropPending(p.id);
    return redirectWithError(res, issuer, p.redirectUri, p.state, 'access_denied', 'the user denied the request');
  }
  let who: Consenter;
  const token = (form.auth_token ?? '').trim();
  if (!token && form.session !== undefined) {
    const found = browserPrincipal(deps, req);
    try {
      deps.human?.browser.checkCsrf(req);
    } catch {
      return sendHtml(res, 403, errorPage('Forbidden', 'The form did not come from this sign-in page (cross-site request refused).'));
    }
    // The page named the Session it was shown for: a cookie that changed meanwhile (another tab signed in as
    // someone else, or signed out) must not consent in the other person's name.
    if (!found || found.session!.metadata.name !== form.session) {
      return renderConsent(deps, req, res, p, client, 401, 'Your sign-in changed or ended. Check who you are signed in as and try again.');
    }
    const st = found.session!.status as { authentication?: Record<string, unknown> };
    who = { user: found.user, ...(st.authentication ? { authentication: st.authentication } : {}) };
  } else {
    if (!token) return renderConsent(deps, req, res, p, client, 401, deps.human?.idps.browserProviders().length ? 'Sign in with your identity provider first, or paste an auth token.' : 'Paste your auth token.');
    try {
      who = deps.identity.checkAuthTokenForGrant(token);
    } catch (e) {
      if (!(e instanceof OcteliumError)) throw e;
      if (deps.state.recordFailure(p.id) >= MAX_LOGIN_FAILURES) {
        deps.state.dropPending(p.id);
        return redirectWithError(res, issuer, p.redirectUri, p.state, 'access_denied', 'too many failed sign-in attempts');
      }
      return renderConsent(deps, req, res, p, client, e.httpStatus, e.message);
    }
  }
  // The consent is used once, also when the same form reaches two replicas at once.
  if (!deps.state.dropPending(p.id)) return sendHtml(res, 400, errorPage('Request expired', 'This sign-in request was already answered. Start again from the application.'));
  const code = deps.state.issueCode({
    clientId: p.clientId, redirectUri: p.redirectUri, codeChallenge: p.codeChallenge, scope: p.scope, resource: p.resource, nonce: p.nonce,
    userName: who.user.metadata.name, credentialName: who.credential?.metadata.name, authentication: who.authentication,
    grantExpiresAt: Math.min(Date.now() + GRANT_TTL_MS, who.expiresAt ?? Infinity), authTime: Math.floor(Date.now() / 1000),
  });
  const u = new URL(p.redirectUri);
  u.searchParams.set('code', code);
  if (p.state !== undefined) u.searchParams.set('state', p.state);
  u.searchParams.set('iss', issuer);
  redirect(res, u.toString());
}

export async function authorizeEndpoint(deps: AsDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  try {
    if (req.method === 'GET') return await authorizeGet(deps, req, res, parseParams(AuthorizeQuery, paramsOf(url.searchParams)));
    if (req.method === 'POST') return await authorizePost(deps, req, res);
    res.writeHead(405, { allow: 'GET, POST' }).end();
  } catch (e) {
    // A browser navigation: a malformed request gets a page, never a redirect (the redirect URI is unchecked yet).
    const oauth = asOAuthError(e);
    if (!oauth) throw e;
    sendHtml(res, oauth.status, errorPage('Invalid request', oauth.description));
  }
}
