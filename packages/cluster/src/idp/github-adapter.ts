import * as client from 'openid-client';
import { z } from 'zod';
import type { IdentityProviderSpec, Resource } from '@octelium-ts/shared';
import { asLoginError } from './oidc-adapter.js';
import { limitedFetch } from './limited-fetch.js';
import { LoginError, type BrowserLoginAdapter, type LoginSecrets, type VerifiedIdentity } from './types.js';

type GitHubSpec = NonNullable<IdentityProviderSpec['github']>;

export const GITHUB_DEFAULTS = {
  authorizationURL: 'https://github.com/login/oauth/authorize',
  tokenURL: 'https://github.com/login/oauth/access_token',
  apiURL: 'https://api.github.com',
};

/** `GET /user/emails` (GitHub REST): only the fields used, bounded. */
const Emails = z.array(z.looseObject({ email: z.string().max(320), primary: z.boolean(), verified: z.boolean() })).max(100);
const GitHubUser = z.looseObject({ id: z.number(), login: z.string().max(100), avatar_url: z.string().max(2048).optional() });

/**
 * GitHub's OAuth2 web application flow (docs.github.com "Authorizing OAuth apps"): authorize → code → access
 * token, with state and PKCE S256 checked by openid-client (GitHub is plain OAuth2, no ID token). The email is the
 * account's primary **verified** address from `GET /user/emails` (scope `user:email`).
 */
export class GitHubAdapter implements BrowserLoginAdapter {
  readonly type = 'github' as const;

  constructor(private readonly idp: Resource, private readonly clientSecret: () => string | undefined, private readonly fetchFn = limitedFetch()) {}

  get #spec(): GitHubSpec {
    return (this.idp.spec as IdentityProviderSpec).github!;
  }

  #endpoints() {
    const s = this.#spec;
    return { authorizationURL: s.authorizationURL ?? GITHUB_DEFAULTS.authorizationURL, tokenURL: s.tokenURL ?? GITHUB_DEFAULTS.tokenURL, apiURL: (s.apiURL ?? GITHUB_DEFAULTS.apiURL).replace(/\/+$/, '') };
  }

  #configuration(): client.Configuration {
    const secret = this.clientSecret();
    if (secret === undefined) throw new LoginError(502, 'Identity provider misconfigured', `the Secret "${this.#spec.clientSecret.fromSecret}" holding the client secret does not exist`, 'IDP_MISCONFIGURED');
    const e = this.#endpoints();
    const config = new client.Configuration(
      { issuer: new URL(e.authorizationURL).origin, authorization_endpoint: e.authorizationURL, token_endpoint: e.tokenURL },
      this.#spec.clientID, { client_secret: secret }, client.ClientSecretPost(secret),
    );
    config[client.customFetch] = this.#tokenErrorsAsErrors(e.tokenURL) as client.CustomFetch;
    config.timeout = 5;
    if ([e.authorizationURL, e.tokenURL].some((u) => u.startsWith('http:'))) client.allowInsecureRequests(config);
    return config;
  }

  /**
   * GitHub answers a refused token request (bad code, wrong client secret) with **200** and an `error` field
   * (docs.github.com, "Troubleshooting OAuth app access token request errors"). Turned into the 400 RFC 6749 §5.2
   * says, so openid-client reports GitHub's error code instead of "access_token must be a string".
   */
  #tokenErrorsAsErrors(tokenURL: string) {
    return async (url: string | URL, init: Parameters<ReturnType<typeof limitedFetch>>[1]) => {
      const res = await this.fetchFn(url, init);
      if (String(url) !== tokenURL || res.status !== 200) return res;
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const status = body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string' ? 400 : 200;
      return new Response(text, { status, headers: res.headers });
    };
  }

  async probe(): Promise<void> {
    this.#configuration();
  }

  async start(p: { redirectUri: string; state: string }): Promise<{ url: string; secrets: LoginSecrets }> {
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(this.#configuration(), {
      redirect_uri: p.redirectUri, scope: 'read:user user:email', state: p.state, allow_signup: 'false',
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    return { url: url.href, secrets: { verifier } };
  }

  async finish(p: { callback: URL; redirectUri: string; state: string; secrets: LoginSecrets }): Promise<VerifiedIdentity> {
    const error = p.callback.searchParams.get('error');
    if (error) throw new LoginError(403, 'Sign-in refused', `GitHub answered "${error.slice(0, 100)}"`, 'IDP_ERROR');
    let accessToken: string;
    try {
      // GitHub does not send `iss` back; the callback URL must not carry a client-chosen one either.
      const callback = new URL(p.callback);
      callback.searchParams.delete('iss');
      const tokens = await client.authorizationCodeGrant(this.#configuration(), callback, { pkceCodeVerifier: p.secrets.verifier, expectedState: p.state, idTokenExpected: false });
      accessToken = tokens.access_token;
    } catch (e) {
      throw asLoginError(e, 'token');
    }
    const api = this.#endpoints().apiURL;
    const user = GitHubUser.safeParse(await this.#api(`${api}/user`, accessToken));
    const emails = Emails.safeParse(await this.#api(`${api}/user/emails`, accessToken));
    if (!user.success || !emails.success) throw new LoginError(502, 'Sign-in failed', 'GitHub answered the user API with an unexpected document', 'IDP_ERROR');
    const primary = emails.data.find((e) => e.primary && e.verified);
    if (!primary) throw new LoginError(403, 'Email not verified', `the GitHub account "${user.data.login}" has no verified primary email`, 'EMAIL_NOT_VERIFIED');
    return { email: primary.email, identifier: String(user.data.id), ...(user.data.avatar_url ? { picURL: user.data.avatar_url } : {}) };
  }

  async #api(url: string, token: string): Promise<unknown> {
    let res: Response;
    try {
      res = await this.fetchFn(url, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28', 'user-agent': 'octelium-ts' } });
    } catch (e) {
      throw asLoginError(e, 'user API');
    }
    if (res.status !== 200) throw new LoginError(502, 'Sign-in failed', `GitHub's user API answered ${res.status}`, 'IDP_ERROR');
    try {
      return await res.json();
    } catch {
      throw new LoginError(502, 'Sign-in failed', "GitHub's user API answered with something that is not JSON", 'IDP_ERROR');
    }
  }
}
