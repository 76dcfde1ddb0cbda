import { OcteliumError } from '@octelium-ts/shared';
import { bearerToken } from '../../api/http-util.js';
import type { Principal } from '../../auth/principal.js';
import { clearAuthCookie } from '../../web/cookies.js';
import type { GatewayContext } from '../context.js';
import type { GatewayDeps } from '../deps.js';

/**
 * authenticate: Bearer / X-Octelium-Auth → Principal, else the `octelium_auth` browser cookie (design.md §7);
 * anonymous Services need none. A browser navigating without a credential is sent to `/login?redirect=…`,
 * every other client gets the 401.
 */
export function authnStage(deps: GatewayDeps) {
  /** Synchronous unless a JWT must be verified first (identity.authenticateSoon): most requests need no promise. */
  return function authenticate(ctx: GatewayContext): void | Promise<void> {
    if (ctx.entry!.spec.isAnonymous) {
      ctx.anonymous = true;
      return;
    }
    // An afterRoute stage may have named the caller already: a federated MCP Service's member hop (mcp/federation).
    const token = ctx.principal ? undefined : bearerToken(ctx.req);
    if (!token) return admit(deps, ctx, ctx.principal);
    const found = deps.identity.authenticateSoon(token);
    if (found instanceof Promise) return found.then((p) => admit(deps, ctx, bearerPrincipal(p)));
    return admit(deps, ctx, bearerPrincipal(found));
  };
}

function bearerPrincipal(principal: Principal | undefined): Principal {
  if (!principal) throw new OcteliumError('UNAUTHENTICATED', 'invalid or expired access token', undefined, 401);
  return principal;
}

/** Names the caller (the bearer's principal, one an earlier stage named, else the browser cookie) and checks that it may reach this Service this way. */
function admit(deps: GatewayDeps, ctx: GatewayContext, known: Principal | undefined): void {
  const spec = ctx.entry!.spec;
  let principal = known;
  if (!principal && deps.browser) {
    principal = deps.browser.authenticate(ctx.req);
    // A cookie is sent by the browser on its own: an unsafe method must come from this Service's (or the cluster's) origin.
    if (principal) deps.browser.checkCsrf(ctx.req);
    else if (deps.browser.wantsPage(ctx.req)) return redirectToLogin(deps, ctx);
    else if (deps.browser.token(ctx.req)) throw new OcteliumError('UNAUTHENTICATED', 'the browser session has ended (expired, idle or signed out): sign in again at /login');
  }
  if (!principal) throw new OcteliumError('UNAUTHENTICATED', 'no credential: send an access token as "Authorization: Bearer <token>" or "X-Octelium-Auth"');
  ctx.principal = principal;
  const sessionType = (principal.session?.status as { type?: string } | undefined)?.type;
  // Octelium: a non-public Service is reachable only client-based (octelium connect), never clientless.
  if (!spec.isPublic && sessionType === 'CLIENTLESS') {
    throw new OcteliumError('SERVICE_NOT_PUBLIC', `Service "${ctx.service!.metadata.name}" is not public; reach it through \`octelium connect\``);
  }
}

/** 302 to the cluster's /login with this request as `redirect`; logged as an unauthenticated (DENIED) request. */
function redirectToLogin(deps: GatewayDeps, ctx: GatewayContext): void {
  const browser = deps.browser!;
  const stale = browser.token(ctx.req) !== undefined;
  const location = browser.loginURL(ctx.req, ctx);
  ctx.error = new OcteliumError('UNAUTHENTICATED', stale ? 'browser session ended; sent to /login' : 'no credential; browser sent to /login');
  ctx.responseStatus = 302;
  ctx.responded = true;
  ctx.res.writeHead(302, {
    location, 'cache-control': 'no-store', 'content-length': '0',
    ...(stale ? { 'set-cookie': clearAuthCookie(new URL(location).origin) } : {}),
  });
  ctx.res.end();
}
