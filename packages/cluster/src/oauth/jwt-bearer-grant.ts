import type { IncomingMessage } from 'node:http';
import { AssertionError, peekIssuer } from '../idp/assertion.js';
import type { AsDeps } from './deps.js';
import { invalidGrant, invalidRequest, invalidTarget, OAuthError } from './errors.js';
import type { TokenRequest } from './request-schemas.js';
import { sourceKey } from './source-address.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** A Session from an assertion lives this long: CI tokens are minutes-lived; the job gets an hour. */
export const ASSERTION_SESSION_TTL_MS = 3600_000;
/** A `jti` is remembered until the assertion's `exp` plus the verifier's clock tolerance. */
const CLOCK_TOLERANCE_MS = 30_000;

/** One log line per refused assertion: the reason and the issuer/subject, never the JWT. */
function refuse(req: IncomingMessage, e: OAuthError): OAuthError {
  console.warn(`oauth: refused jwt-bearer from ${sourceKey(req)}: ${e.error}: ${e.description}`);
  return e;
}

/**
 * RFC 7523 §2.1 (design.md §7): a workload's OIDC token (a CI job's, a Kubernetes service account's) becomes a
 * CLIENT Session of the WORKLOAD User that names the token's subject, with no stored secret. The unverified `iss`
 * only picks the `oidcIdentityToken` IdentityProvider whose keys then verify everything (idp/assertion.ts: jose,
 * signature, iss, aud, exp); `sub` must be an identifier of exactly one User with that IdP; a `jti` is single use.
 * Client authentication is optional (RFC 7523 §3.1) and not asked for: the assertion is the credential.
 */
export async function jwtBearerGrant(deps: AsDeps, req: IncomingMessage, form: TokenRequest): Promise<Record<string, unknown>> {
  const human = deps.human;
  if (!human) throw new OAuthError('unsupported_grant_type', 'this cluster takes no assertions');
  const jwt = form.assertion;
  if (!jwt) throw refuse(req, invalidRequest('assertion is required'));
  // No audience is minted here: the Session token is for the API and every Service, like `octelium login`'s.
  if (form.resource.length) throw refuse(req, invalidTarget('resource is not supported with the jwt-bearer grant'));
  const iss = peekIssuer(jwt);
  if (!iss) throw refuse(req, invalidGrant('the assertion is not a JWT with an "iss" claim'));
  const found = human.idps.forIssuer(iss);
  if (!found) throw refuse(req, invalidGrant(`no oidcIdentityToken IdentityProvider accepts the issuer "${iss.slice(0, 200)}"`));
  const idpName = found.idp.metadata.name;
  let verified;
  try {
    verified = await found.verifier.verify(jwt);
  } catch (e) {
    if (!(e instanceof AssertionError)) throw e;
    if (e.reason === 'IDP_UNAVAILABLE' || e.reason === 'IDP_MISCONFIGURED') {
      human.idps.record(idpName, e.message);
      throw refuse(req, new OAuthError('temporarily_unavailable', e.message, 503));
    }
    throw refuse(req, invalidGrant(`the assertion was refused by IdentityProvider "${idpName}": ${e.message}`));
  }
  human.idps.record(idpName, undefined);
  const sub = verified.subject;
  const user = human.idps.userForIdentity(idpName, sub);
  if (!user) throw refuse(req, invalidGrant(`no enabled WORKLOAD User has the identity "${sub.slice(0, 200)}" of IdentityProvider "${idpName}"`));
  const jti = verified.claims.jti;
  if (jti !== undefined) {
    if (typeof jti !== 'string' || !jti || jti.length > 256) throw refuse(req, invalidGrant('the assertion\'s "jti" is not a short string'));
    const exp = Number(verified.claims.exp) * 1000;
    if (!human.replay.firstUse(`jwt-bearer:${idpName}`, jti, exp + CLOCK_TOLERANCE_MS)) throw refuse(req, invalidGrant('this assertion was already used (same "jti")'));
  }
  const expiresAt = Date.now() + ASSERTION_SESSION_TTL_MS;
  const { session, token } = deps.identity.createIdentityProviderSession(user, {
    type: 'CLIENT', isBrowser: false, expiresAt, identityProvider: found.idp, identifier: sub, via: 'assertion',
  });
  console.info(`oauth: ${user.metadata.name} signed in with an assertion of ${idpName} (session ${session.metadata.name})`);
  return { access_token: token, token_type: 'Bearer', expires_in: Math.floor(ASSERTION_SESSION_TTL_MS / 1000) };
}
