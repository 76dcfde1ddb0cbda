import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { IdentityProviderSpec, Resource } from '@octelium-ts/shared';
import { IdpFetchError, limitedFetch } from './limited-fetch.js';

type AssertionSpec = NonNullable<IdentityProviderSpec['oidcIdentityToken']>;

/** Octelium's bound on an assertion before anything looks at it. */
export const MAX_ASSERTION_BYTES = 15_000;
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const DISCOVERY_TTL_MS = 3600_000;

export class AssertionError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** The issuer an `oidcIdentityToken` IdP accepts: `issuer`, else its `issuerURL`; compared without a trailing `/`. */
export function assertionIssuer(spec: AssertionSpec): string {
  return (spec.issuer ?? spec.issuerURL!).replace(/\/+$/, '');
}

/** `iss` of a JWT, unverified: only to pick the IdentityProvider whose keys then verify it. */
export function peekIssuer(jwt: string): string | undefined {
  if (jwt.length > MAX_ASSERTION_BYTES) return undefined;
  try {
    const iss = decodeJwt(jwt).iss;
    return typeof iss === 'string' ? iss.replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
}

const Discovery = z.looseObject({ issuer: z.string(), jwks_uri: z.url() });

/**
 * Verifies workload OIDC assertions (RFC 7523 jwt-bearer, `octelium login --assertion`) for one `oidcIdentityToken`
 * IdentityProvider with jose: signature by the IdP's keys (JWKS by URL, inline, or from the issuer's discovery
 * document; rotation handled by jose's remote key set), `iss`, `aud` (default the cluster URL), `exp` required.
 */
export class AssertionVerifier {
  #keys?: { at: number; value: Promise<JWTVerifyGetKey> };

  constructor(private readonly idp: Resource, private readonly defaultAudience: () => string, private readonly fetchFn = limitedFetch()) {}

  get #spec(): AssertionSpec {
    return (this.idp.spec as IdentityProviderSpec).oidcIdentityToken!;
  }

  #remote(url: string): JWTVerifyGetKey {
    return createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 10_000, cacheMaxAge: 600_000, [customFetch]: this.fetchFn as never });
  }

  #keySet(): Promise<JWTVerifyGetKey> {
    if (this.#keys && Date.now() - this.#keys.at < DISCOVERY_TTL_MS) return this.#keys.value;
    const spec = this.#spec;
    const value = (async () => {
      if (spec.jwksContent !== undefined) {
        try {
          return createLocalJWKSet(JSON.parse(spec.jwksContent));
        } catch {
          throw new AssertionError('IDP_MISCONFIGURED', 'jwksContent is not a JSON Web Key Set');
        }
      }
      if (spec.jwksURL !== undefined) return this.#remote(spec.jwksURL);
      const base = spec.issuerURL!.replace(/\/+$/, '');
      const res = await this.fetchFn(`${base}/.well-known/openid-configuration`, { method: 'GET', headers: { accept: 'application/json' } });
      if (res.status !== 200) throw new IdpFetchError(`discovery at ${base} answered ${res.status}`);
      const doc = Discovery.safeParse(await res.json().catch(() => undefined));
      if (!doc.success) throw new IdpFetchError(`discovery at ${base} is not an OpenID configuration`);
      if (doc.data.issuer.replace(/\/+$/, '') !== base) throw new IdpFetchError(`discovery at ${base} names another issuer`);
      return this.#remote(doc.data.jwks_uri);
    })();
    this.#keys = { at: Date.now(), value };
    value.catch(() => {
      if (this.#keys?.value === value) this.#keys = undefined;
    });
    return value;
  }

  async probe(): Promise<void> {
    await this.#keySet();
  }

  /** The verified `sub`; throws AssertionError naming what failed. */
  async verify(jwt: string): Promise<{ subject: string; claims: Record<string, unknown> }> {
    if (jwt.length > MAX_ASSERTION_BYTES) throw new AssertionError('INVALID_ASSERTION', `the assertion is longer than ${MAX_ASSERTION_BYTES} bytes`);
    let keys;
    try {
      keys = await this.#keySet();
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      throw new AssertionError('IDP_UNAVAILABLE', `the keys of IdentityProvider "${this.idp.metadata.name}" cannot be fetched: ${(e as Error).message}`);
    }
    const spec = this.#spec;
    try {
      const { payload } = await jwtVerify(jwt, keys, {
        issuer: [assertionIssuer(spec), `${assertionIssuer(spec)}/`], audience: spec.audience ?? this.defaultAudience(),
        algorithms: ALGORITHMS, requiredClaims: ['exp', 'sub'], clockTolerance: 30,
      });
      return { subject: payload.sub!, claims: payload as Record<string, unknown> };
    } catch (e) {
      // The key set could not be had (down, non-200, not a JWKS): the IdP's fault, not the token's.
      const c = (e as { code?: string }).code;
      const keysUnavailable = c === 'ERR_JWKS_TIMEOUT' || c === 'ERR_JWKS_INVALID' || (c === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test((e as Error).message));
      if (e instanceof IdpFetchError || keysUnavailable) throw new AssertionError('IDP_UNAVAILABLE', `the keys of IdentityProvider "${this.idp.metadata.name}" cannot be fetched: ${(e as Error).message}`);
      const code = (e as { code?: string }).code ?? 'ERR_JWT_INVALID';
      throw new AssertionError('INVALID_ASSERTION', `${code}: ${(e as Error).message.slice(0, 200)}`);
    }
  }
}
