import type { Resource } from '@octelium-ts/shared';

/** What an IdentityProvider vouched for at the end of a browser login. */
export interface VerifiedIdentity {
  /** The email the User is matched by (`spec.email`); verified by the IdP. */
  email: string;
  /** The IdP's stable subject (OIDC `sub`, GitHub user id, SAML NameID). */
  identifier: string;
  picURL?: string;
}

/** Per-login values an adapter must get back at the callback (PKCE verifier, nonce, SAML request id). */
export type LoginSecrets = Record<string, string>;

/**
 * One IdentityProvider type behind one interface (style.md §12): `start` gives the URL to send the browser to,
 * `finish` turns the callback into a verified identity or throws a LoginError.
 */
export interface BrowserLoginAdapter {
  readonly type: 'oidc' | 'github' | 'saml';
  start(p: { redirectUri: string; state: string }): Promise<{ url: string; secrets: LoginSecrets }>;
  /** `callback` is the full callback URL (query) or, for SAML's POST binding, its form fields. */
  finish(p: { callback: URL; form?: Record<string, string>; redirectUri: string; state: string; secrets: LoginSecrets }): Promise<VerifiedIdentity>;
  /** Fetches what the IdP needs (discovery, metadata) to report whether it is usable; throws why not. */
  probe(): Promise<void>;
}

/**
 * A login that cannot go on, with the page the person sees. `status` 4xx for what the person or the IdP's answer
 * did wrong, 502 when the IdP cannot be reached or misbehaves. Messages never carry tokens or secrets.
 */
export class LoginError extends Error {
  constructor(readonly status: number, readonly title: string, message: string, readonly reason: string = 'LOGIN_FAILED') {
    super(message);
    this.name = 'LoginError';
  }
}

export function secretValue(store: { get(kind: 'Secret', name: string): Resource | undefined }, name: string | undefined): string | undefined {
  return name ? store.get('Secret', name)?.data?.value : undefined;
}
