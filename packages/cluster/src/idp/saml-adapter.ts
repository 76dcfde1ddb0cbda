import type { Resource } from '@octelium-ts/shared';
import type { limitedFetch } from './limited-fetch.js';
import { LoginError, type BrowserLoginAdapter, type LoginSecrets, type VerifiedIdentity } from './types.js';

/**
 * SAML 2.0 service provider. Not built yet: a `saml` IdentityProvider is accepted, listed, and reported as
 * `Failed (SAML login is not implemented yet)` so that nobody mistakes it for a working login.
 */
export class SamlAdapter implements BrowserLoginAdapter {
  readonly type = 'saml' as const;

  constructor(private readonly idp: Resource, private readonly clusterUrl: () => string, private readonly fetchFn: ReturnType<typeof limitedFetch>) {}

  async probe(): Promise<void> {
    throw new LoginError(501, 'SAML not available', 'SAML login is not implemented yet', 'NOT_IMPLEMENTED');
  }

  async start(): Promise<{ url: string; secrets: LoginSecrets }> {
    return this.probe() as never;
  }

  async finish(): Promise<VerifiedIdentity> {
    return this.probe() as never;
  }
}
