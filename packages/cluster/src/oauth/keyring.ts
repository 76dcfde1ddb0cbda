import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { randomUUID } from 'node:crypto';
import type { DB } from '../store/db.js';

const ALG = 'ES256';

interface Key { kid: string; privateKey: CryptoKey; publicKey: CryptoKey; publicJwk: JWK }

/**
 * The cluster's JWT signing keys, persisted in the DB. Tokens carry `kid`; verification picks the key
 * by `kid`, so adding a new key (rotation) keeps older unexpired tokens valid.
 */
export class KeyRing {
  readonly #keys = new Map<string, Key>();
  #current!: Key;

  private constructor() {}

  static async open(db: DB): Promise<KeyRing> {
    const ring = new KeyRing();
    const rows = db.prepare('SELECT * FROM signing_keys ORDER BY created_at').all() as Array<{ kid: string; private_jwk: string; public_jwk: string }>;
    for (const r of rows) {
      const publicJwk = JSON.parse(r.public_jwk) as JWK;
      const key: Key = {
        kid: r.kid,
        privateKey: (await importJWK(JSON.parse(r.private_jwk) as JWK, ALG)) as CryptoKey,
        publicKey: (await importJWK(publicJwk, ALG)) as CryptoKey,
        publicJwk,
      };
      ring.#keys.set(key.kid, key);
      ring.#current = key;
    }
    if (!rows.length) await ring.rotate(db);
    return ring;
  }

  /** Adds a new signing key and makes it current. */
  async rotate(db: DB): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
    db.prepare('INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at) VALUES (?, ?, ?, ?, ?)').run(
      kid, ALG, JSON.stringify(await exportJWK(privateKey)), JSON.stringify(publicJwk), new Date().toISOString(),
    );
    const key = { kid, privateKey, publicKey, publicJwk };
    this.#keys.set(kid, key);
    this.#current = key;
  }

  jwks(): { keys: JWK[] } {
    return { keys: [...this.#keys.values()].map((k) => k.publicJwk) };
  }

  /** Signs an access token (RFC 9068 `typ: at+jwt`), or another JWT kind (an OIDC ID token is `typ: JWT`). */
  sign(payload: JWTPayload, expiresInSec: number, issuer: string, typ = 'at+jwt'): Promise<string> {
    return new SignJWT(payload)
      .setProtectedHeader({ alg: ALG, kid: this.#current.kid, typ })
      .setIssuedAt()
      .setIssuer(issuer)
      .setJti(randomUUID())
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSec)
      .sign(this.#current.privateKey);
  }

  /**
   * Verifies an access token: signature, expiry, issuer and `typ: at+jwt` (so an ID token, signed by the same
   * key, is never accepted as an access token); undefined when anything is wrong.
   */
  async verify(token: string, issuer: string): Promise<JWTPayload | undefined> {
    try {
      const { payload } = await jwtVerify(token, async (header) => {
        const k = header.kid ? this.#keys.get(header.kid) : undefined;
        if (!k) throw new Error('unknown kid');
        return k.publicKey;
      }, { issuer, algorithms: [ALG], typ: 'at+jwt' });
      return payload;
    } catch {
      return undefined;
    }
  }
}
