import { z } from 'zod';
import { Name, SecretRef } from './common.js';

/**
 * IdentityProvider (design.md §7, Octelium's corev1.IdentityProvider): exactly one of `oidc`, `github`, `saml`,
 * `oidcIdentityToken`. Client secrets are only ever references (`{fromSecret: name}`), never inline, so that
 * `get idp -o yaml` and the AccessLogs can never show one.
 */

/** Admin-configured URLs may point anywhere, loopback included (unlike client-supplied URLs such as CIMD). */
const HttpURL = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048);
const ClientID = z.string().min(1).max(512);

export const OIDCProviderSpec = z.strictObject({
  issuerURL: HttpURL,
  clientID: ClientID,
  clientSecret: SecretRef.optional(),
  /** `openid` is always requested; default `[openid, profile, email]`. */
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope token')).max(20).optional(),
  /** Claim holding the email used to find the User (default `email`). */
  identifierClaim: z.string().min(1).max(128).optional(),
  /** Require `email_verified: true` (an explicit `false` is refused either way). */
  checkEmailVerified: z.boolean().optional(),
});

export const GitHubProviderSpec = z.strictObject({
  clientID: ClientID,
  clientSecret: SecretRef,
  /** Endpoints default to github.com's; configurable for GitHub Enterprise Server (and tests). */
  authorizationURL: HttpURL.optional(),
  tokenURL: HttpURL.optional(),
  apiURL: HttpURL.optional(),
});

export const SAMLProviderSpec = z
  .strictObject({
    metadataURL: HttpURL.optional(),
    /** The IdP's metadata XML, inline. */
    metadata: z.string().min(1).max(256 * 1024).optional(),
    /** This cluster's SP entity ID; default `<cluster URL>/saml`. */
    entityID: z.string().min(1).max(1024).optional(),
    /** Attribute holding the email; default the NameID (emailAddress format) or `email`. */
    identifierAttribute: z.string().min(1).max(256).optional(),
  })
  .refine((s) => (s.metadataURL === undefined) !== (s.metadata === undefined), { message: 'set exactly one of metadataURL, metadata' });

export const OIDCIdentityTokenSpec = z
  .strictObject({
    issuerURL: HttpURL.optional(),
    jwksURL: HttpURL.optional(),
    jwksContent: z.string().min(1).max(64 * 1024).optional(),
    /** Expected `iss`; required with jwksURL / jwksContent (issuerURL implies it). */
    issuer: z.string().min(1).max(2048).optional(),
    /** Expected `aud`; default the cluster URL. */
    audience: z.string().min(1).max(2048).optional(),
  })
  .refine((s) => [s.issuerURL, s.jwksURL, s.jwksContent].filter((v) => v !== undefined).length === 1, { message: 'set exactly one of issuerURL, jwksURL, jwksContent' })
  .refine((s) => s.issuerURL !== undefined || s.issuer !== undefined, { message: 'issuer is required with jwksURL or jwksContent', path: ['issuer'] });

export const IDP_TYPES = ['oidc', 'github', 'saml', 'oidcIdentityToken'] as const;
export type IdentityProviderType = (typeof IDP_TYPES)[number];

export const IdentityProviderSpec = z
  .strictObject({
    oidc: OIDCProviderSpec.optional(),
    github: GitHubProviderSpec.optional(),
    saml: SAMLProviderSpec.optional(),
    oidcIdentityToken: OIDCIdentityTokenSpec.optional(),
    isDisabled: z.boolean().optional(),
  })
  .refine((s) => IDP_TYPES.filter((t) => s[t] !== undefined).length === 1, { message: `set exactly one of ${IDP_TYPES.join(', ')}` });
export type IdentityProviderSpec = z.infer<typeof IdentityProviderSpec>;

/** The type an IdentityProvider spec declares. */
export function identityProviderType(spec: IdentityProviderSpec): IdentityProviderType {
  return IDP_TYPES.find((t) => spec[t] !== undefined)!;
}

/** `spec.authentication.identities[]` of a User: the subjects an IdentityProvider vouches for (assertions). */
export const UserIdentity = z.strictObject({ identityProvider: Name, identifier: z.string().min(1).max(1024) });
