import type { Resource } from '@octelium-ts/shared';

/** Who is making a request, once a token has been checked. */
export interface Principal {
  user: Resource;
  session?: Resource;
  /** How the token was presented: a login Session, an access-token Credential, or an OAuth2 JWT. */
  via: 'session' | 'access-token' | 'oauth2';
  credentialName?: string;
  /**
   * RFC 8707 / RFC 9068 `aud` of an OAuth2 JWT minted for specific resources (the `resource` parameter).
   * Absent for cluster-wide tokens (opaque tokens, JWTs minted without `resource`), which every Service accepts.
   */
  audience?: string[];
  /** The token's `scope` claim, split; absent when the token carries none (not scope-restricted). */
  scopes?: string[];
  /** The OAuth client the token was issued to (`client_id` claim). */
  clientID?: string;
}
