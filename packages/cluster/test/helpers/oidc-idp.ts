import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface TestIdp { issuer: string; close(): Promise<void> }

/**
 * A real OpenID Provider (`oidc-provider`, panva) on 127.0.0.1 with one confidential client for the cluster.
 * Its development login form accepts any login/password; the login becomes `sub` and `email`, and logins that
 * start with `unverified` get `email_verified: false`. Consent is granted automatically (the recipe from the
 * oidc-provider docs), so a browser fills exactly one form.
 */
export async function startOidcIdp(client: { clientId: string; clientSecret: string; redirectUris: string[] }): Promise<TestIdp> {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-1', use: 'sig', alg: 'RS256' };
  const provider = new Provider(issuer, {
    clients: [{ client_id: client.clientId, client_secret: client.clientSecret, redirect_uris: client.redirectUris, grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    jwks: { keys: [jwk as never] },
    cookies: { keys: ['octelium-ts-test-cookie-key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx: unknown, sub: string) {
      return { accountId: sub, async claims() { return { sub, email: sub, email_verified: !sub.startsWith('unverified'), name: sub.split('@')[0] }; } };
    },
    async loadExistingGrant(ctx: { oidc: unknown }) {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const oidc = ctx.oidc as { client: { clientId: string }; session: { accountId: string; grantIdFor(id: string): string | undefined }; result?: { consent?: { grantId?: string } }; provider: { Grant: any } };
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(oidc.client.clientId);
      if (grantId) return oidc.provider.Grant.find(grantId);
      const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
