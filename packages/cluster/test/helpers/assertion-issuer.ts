import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';

/**
 * A workload token issuer for tests, shaped like GitHub Actions' OIDC issuer: an ES256 key made here, its JWKS at
 * `/jwks` (and a discovery document) on 127.0.0.1, and `sign()` for tokens with any claims. `down()` makes the
 * JWKS answer 503, to test an IdP that cannot be reached.
 */
export async function startAssertionIssuer(issuer = 'https://token.actions.example') {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'ci-1', alg: 'ES256', use: 'sig' };
  let up = true;
  const server = createServer((req, res) => {
    if (!up) return void res.writeHead(503).end();
    if (req.url === '/jwks') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const jwksURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return {
    issuer, jwksURL,
    /** A token with sensible defaults (5 min, `aud`, `sub`); `key: 'other'` signs with a key not in the JWKS. */
    sign: (claims: JWTPayload & { aud?: string }, opts: { key?: 'other'; exp?: number | null; iss?: string } = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', kid: 'ci-1', typ: 'JWT' }).setIssuer(opts.iss ?? issuer).setIssuedAt(now);
      // exp: null leaves the claim out (a token that never expires must be refused).
      if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? now + 300);
      return jwt.sign(opts.key === 'other' ? other.privateKey : privateKey);
    },
    down: () => (up = false),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
