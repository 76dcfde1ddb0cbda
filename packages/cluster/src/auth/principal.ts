import type { Resource } from '@octelium-ts/shared';

/** Who is making a request, once a token has been checked. */
export interface Principal {
  user: Resource;
  session?: Resource;
  /** How the token was presented: a login Session, an access-token Credential, or an OAuth2 JWT. */
  via: 'session' | 'access-token' | 'oauth2';
  credentialName?: string;
}
