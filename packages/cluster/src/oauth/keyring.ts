import { jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { feedOf, type ChangeFeed, type StoreSource } from '../store/change-feed.js';

const ALG = 'ES256';

interface Key { kid: string; privateKey: KeyObject; publicKey: KeyObject; publicJwk: JWK; createdAt: string }
type KeyRecord = { kid: string; private_jwk: string; public_jwk: string; created_at: string };

/**
 * The cluster's JWT signing keys, persisted in the store and shared by every replica. Tokens carry `kid`;
 * verification picks the key by `kid`, so adding a new key (rotation) keeps older unexpired tokens valid. The
 * newest key signs; a key another replica adds (first start, rotation) reaches this one through the change feed,
 * so all replicas agree on the signing key and each verifies what any other signed.
 */
export class KeyRing {
  readonly #keys = new Map<string, Key>();
  readonly #feed: ChangeFeed;
  #current!: Key;

  private constructor(feed: ChangeFeed) {
    this.#feed = feed;
  }

  static async open(source: StoreSource): Promise<KeyRing> {
    const ring = new KeyRing(feedOf(source));
    ring.#feed.register('signing_keys', {
      applyRemote: (op, row) => op === 'put' && ring.#add(row as KeyRecord),
      reload: () => ring.#load(),
    });
    ring.#load();
    // Under the store's write lock, so replicas starting together create one key between them.
    if (!ring.#keys.size) ring.#feed.transaction(() => ring.#keys.size || ring.rotate());
    return ring;
  }

  #load(): void {
    for (const r of this.#feed.sql.all<KeyRecord>('SELECT kid, private_jwk, public_jwk, created_at FROM signing_keys')) this.#add(r);
  }

  #add(r: KeyRecord): void {
    if (this.#keys.has(r.kid)) return;
    const publicJwk = JSON.parse(r.public_jwk) as JWK;
    const key: Key = {
      kid: r.kid,
      privateKey: createPrivateKey({ key: JSON.parse(r.private_jwk) as import('node:crypto').JsonWebKey, format: 'jwk' }),
      publicKey: createPublicKey({ key: publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }),
      publicJwk,
      createdAt: r.created_at,
    };
    this.#keys.set(key.kid, key);
    if (!this.#current || key.createdAt > this.#current.createdAt || (key.createdAt === this.#current.createdAt && key.kid > this.#current.kid)) this.#current = key;
  }

  /** Adds a new signing key and makes it current (on every replica, through the feed). */
  rotate(): void {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = randomUUID();
    const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: ALG, use: 'sig' };
    const row: KeyRecord = { kid, private_jwk: JSON.stringify(privateKey.export({ format: 'jwk' })), public_jwk: JSON.stringify(publicJwk), created_at: new Date().toISOString() };
    this.#feed.transaction(() => this.#feed.sql.run('INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at) VALUES (?, ?, ?, ?, ?)',
      [row.kid, ALG, row.private_jwk, row.public_jwk, row.created_at]));
    this.#add(row);
  }

  #lastLateLookup = 0;
  /**
   * A kid we do not know may be a key another replica added a moment ago, before its change reached us: catch up
   * once (at most once a second, so a stream of forged kids costs nothing).
   */
  #lateKey(kid: string): Key | undefined {
    if (Date.now() - this.#lastLateLookup < 1000) return undefined;
    this.#lastLateLookup = Date.now();
    try {
      this.#feed.catchUp();
    } catch {
      return undefined;
    }
    return this.#keys.get(kid);
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
        const k = header.kid ? this.#keys.get(header.kid) ?? this.#lateKey(header.kid) : undefined;
        if (!k) throw new Error('unknown kid');
        return k.publicKey;
      }, { issuer, algorithms: [ALG], typ: 'at+jwt' });
      return payload;
    } catch {
      return undefined;
    }
  }
}
