import * as client from 'openid-client';
import type { IdentityProviderSpec, Resource } from '@octelium-ts/shared';
import { IdpFetchError, limitedFetch } from './limited-fetch.js';
import { LoginError, type BrowserLoginAdapter, type LoginSecrets, type VerifiedIdentity } from './types.js';

type OidcSpec = NonNullable<IdentityProviderSpec['oidc']>;

/** Discovery documents are re-read this often (key rotation is handled by openid-client's JWKS cache). */
const DISCOVERY_TTL_MS = 3600_000;

/**
 * OpenID Connect relying party through openid-client (discovery, authorization code + PKCE S256 + state + nonce,
 * ID token validation: iss, aud, exp, iat, nonce, signature by the IdP's JWKS with key rotation). Nothing here
 * parses or checks a JWT itself.
 */
export class OidcAdapter implements BrowserLoginAdapter {
  readonly type = 'oidc' as const;
  #config?: { at: number; value: Promise<client.Configuration> };

  constructor(private readonly idp: Resource, private readonly clientSecret: () => string | undefined, private readonly fetchFn = limitedFetch()) {}

  get #spec(): OidcSpec {
    return (this.idp.spec as IdentityProviderSpec).oidc!;
  }

  #configuration(): Promise<client.Configuration> {
    if (this.#config && Date.now() - this.#config.at < DISCOVERY_TTL_MS) return this.#config.value;
    const spec = this.#spec;
    const secret = this.clientSecret();
    if (spec.clientSecret && secret === undefined) return Promise.reject(new LoginError(502, 'Identity provider misconfigured', `the Secret "${spec.clientSecret.fromSecret}" holding the client secret does not exist`, 'IDP_MISCONFIGURED'));
    const issuer = new URL(spec.issuerURL);
    const value = client.discovery(issuer, spec.clientID, secret === undefined ? undefined : { client_secret: secret },
      secret === undefined ? client.None() : client.ClientSecretBasic(secret),
      {
        [client.customFetch]: this.fetchFn as client.CustomFetch,
        timeout: 5,
        execute: [
          // OIDC Core §3.1.3.7 lets a client skip the ID token's signature when it came straight from the token
          // endpoint over TLS, and openid-client does by default. We check it always (JWKS, refetched on an
          // unknown kid): an http issuer has no TLS, and a signed token is what the Session is based on.
          client.enableNonRepudiationChecks,
          // The issuer is an admin's choice; plain http is allowed only when the admin wrote an http issuer (a lab IdP).
          ...(issuer.protocol === 'http:' ? [client.allowInsecureRequests] : []),
        ],
      });
    this.#config = { at: Date.now(), value };
    // A failed discovery is not cached: the next login tries again.
    value.catch(() => {
      if (this.#config?.value === value) this.#config = undefined;
    });
    return value;
  }

  async probe(): Promise<void> {
    try {
      await this.#configuration();
    } catch (e) {
      throw asLoginError(e, 'discovery');
    }
  }

  async start(p: { redirectUri: string; state: string }): Promise<{ url: string; secrets: LoginSecrets }> {
    let config;
    try {
      config = await this.#configuration();
    } catch (e) {
      throw asLoginError(e, 'discovery');
    }
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const scopes = new Set(['openid', ...(this.#spec.scopes ?? ['profile', 'email'])]);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: p.redirectUri, scope: [...scopes].join(' '), state: p.state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    return { url: url.href, secrets: { verifier, nonce } };
  }

  async finish(p: { callback: URL; redirectUri: string; state: string; secrets: LoginSecrets }): Promise<VerifiedIdentity> {
    const error = p.callback.searchParams.get('error');
    if (error) throw new LoginError(403, 'Sign-in refused', `the identity provider answered "${error.slice(0, 100)}"${p.callback.searchParams.get('error_description') ? `: ${p.callback.searchParams.get('error_description')!.slice(0, 300)}` : ''}`, 'IDP_ERROR');
    let tokens;
    try {
      const config = await this.#configuration();
      tokens = await client.authorizationCodeGrant(config, p.callback, {
        pkceCodeVerifier: p.secrets.verifier, expectedState: p.state, expectedNonce: p.secrets.nonce, idTokenExpected: true,
      });
    } catch (e) {
      throw asLoginError(e, 'token');
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new LoginError(502, 'Sign-in failed', 'the identity provider returned no ID token', 'INVALID_ID_TOKEN');
    const key = this.#spec.identifierClaim ?? 'email';
    let claims: Record<string, unknown> & { sub: string } = idClaims;
    // Providers that keep scope claims out of the ID token (OIDC Core §5.4) have them at the UserInfo endpoint;
    // openid-client checks that its `sub` is the ID token's.
    if (claims[key] === undefined) {
      try {
        const info = await client.fetchUserInfo(await this.#configuration(), tokens.access_token, idClaims.sub);
        claims = { ...idClaims, ...info, sub: idClaims.sub };
      } catch (e) {
        throw asLoginError(e, 'userinfo');
      }
    }
    const email = claims[key];
    if (typeof email !== 'string' || !email) throw new LoginError(403, 'No email', `the ID token has no "${key}" claim; add the "email" scope or set identifierClaim`, 'NO_EMAIL');
    // An explicit `email_verified: false` is refused always; checkEmailVerified also refuses a missing claim.
    if (claims.email_verified === false || (this.#spec.checkEmailVerified && claims.email_verified !== true)) {
      throw new LoginError(403, 'Email not verified', `the identity provider has not verified ${email}; verify it there and sign in again`, 'EMAIL_NOT_VERIFIED');
    }
    return { email, identifier: claims.sub, ...(typeof claims.picture === 'string' ? { picURL: claims.picture } : {}) };
  }
}

/** openid-client's errors (stable codes) as a page: what the IdP sent wrong is a 4xx, an unreachable IdP a 502. */
export function asLoginError(e: unknown, step: string): LoginError {
  if (e instanceof LoginError) return e;
  if (e instanceof IdpFetchError) return new LoginError(502, 'Identity provider unavailable', `${step}: ${e.message}`, 'IDP_UNAVAILABLE');
  const err = e as { code?: string; message?: string; error?: string; cause?: unknown };
  if (err.cause instanceof IdpFetchError) return new LoginError(502, 'Identity provider unavailable', `${step}: ${err.cause.message}`, 'IDP_UNAVAILABLE');
  if (e instanceof client.ResponseBodyError) return new LoginError(502, 'Sign-in failed', `${step}: the identity provider refused the request (${e.error})`, 'IDP_ERROR');
  if (e instanceof client.AuthorizationResponseError) return new LoginError(403, 'Sign-in refused', `the identity provider answered "${e.error}"`, 'IDP_ERROR');
  const code = err.code ?? 'ERR';
  // oauth4webapi puts the specifics in `cause`: the claim that failed (`{claim: 'aud'}`) or the underlying error.
  const cause = err.cause as { claim?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.claim === 'string' ? ` (claim "${cause.claim}")` : typeof cause?.message === 'string' ? ` (${cause.message.slice(0, 200)})` : '';
  // OAUTH_JWT_* / OAUTH_JWS_* / OAUTH_*_CLAIM_*: the ID token (or the response) failed a check.
  return new LoginError(code.startsWith('OAUTH_') || code.startsWith('ERR_JW') ? 400 : 502, 'Sign-in failed', `${step}: ${code}: ${(err.message ?? '').slice(0, 300)}${detail}`, code.includes('JW') || code.includes('CLAIM') ? 'INVALID_ID_TOKEN' : 'IDP_ERROR');
}
