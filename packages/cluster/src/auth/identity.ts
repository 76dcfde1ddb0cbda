import { randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import {
  BoundedMap, OcteliumError, type CreateCredentialResponse, type CredentialSpec, type LoginResponse, type Resource, type UserSpec,
} from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { KeyRing } from '../oauth/keyring.js';
import type { Principal } from './principal.js';
import { hashToken, hashesEqual, newToken, type TokenStore } from './tokens.js';

/** Members of this system Group may use the control-plane API; `root` is one from the first start. */
export const ADMIN_GROUP = 'octelium-admins';
const LOGIN_SESSION_TTL_MS = 24 * 3600_000;
const OAUTH2_TOKEN_TTL_S = 3600;
const JWT_CACHE_MAX = 10_000;

function sessionName(user: string): string {
  return `${user}-${randomBytes(4).toString('hex')}`;
}

/**
 * Credentials, Sessions and token checks. Every lookup is in memory (ResourceStore and TokenStore
 * mirror the DB), so `authenticate` costs one hash and a few map reads per request.
 */
export class IdentityService {
  readonly #jwtCache = new BoundedMap<string, { principalKey: string; exp: number; claims: Pick<Principal, 'audience' | 'scopes' | 'clientID'> }>(JWT_CACHE_MAX);

  constructor(
    private readonly store: ResourceStore,
    private readonly tokens: TokenStore,
    private readonly keys: KeyRing,
    private readonly issuer: () => string,
  ) {
    // Deleting a User, Credential or Session revokes everything issued from it. The replica that deleted it does
    // that (its token deletions reach the others through the change feed); the others only mirror the result.
    store.watch((c) => {
      if (c.type !== 'DELETED' || c.remote) return;
      const r = c.resource;
      const name = r.metadata.name;
      if (r.kind === 'User') {
        this.tokens.revoke((t) => t.userName === name);
        for (const k of ['Credential', 'Session'] as const) {
          for (const x of this.store.list(k)) if (this.ownerOf(x) === name) this.store.delete(k, x.metadata.name);
        }
      } else if (r.kind === 'Credential') {
        this.tokens.revoke((t) => t.credentialName === name);
        for (const s of this.store.list('Session')) if ((s.status as { credentialRef?: { name: string } })?.credentialRef?.name === name) this.store.delete('Session', s.metadata.name);
      } else if (r.kind === 'Session') {
        this.tokens.revoke((t) => t.sessionName === name);
      }
    });
  }

  private ownerOf(r: Resource): string | undefined {
    if (r.kind === 'Credential') return (r.spec as CredentialSpec).user;
    return (r.status as { userRef?: { name: string } } | undefined)?.userRef?.name;
  }

  isAdmin(user: Resource): boolean {
    return ((user.spec as UserSpec).groups ?? []).includes(ADMIN_GROUP);
  }

  createSession(user: Resource, type: 'CLIENT' | 'CLIENTLESS', expiresAt: number | undefined, credential?: Resource, extraStatus: Record<string, unknown> = {}): Resource {
    return this.store.create({
      apiVersion: 'core/v1', kind: 'Session',
      metadata: { name: sessionName(user.metadata.name) },
      spec: { state: 'ACTIVE', ...(expiresAt ? { expiresAt: new Date(expiresAt).toISOString() } : {}) },
      status: {
        type,
        userRef: { kind: 'User', name: user.metadata.name, uid: user.metadata.uid },
        ...(credential ? { credentialRef: { kind: 'Credential', name: credential.metadata.name, uid: credential.metadata.uid } } : {}),
        ...extraStatus,
      },
    });
  }

  /**
   * A Session from an IdentityProvider login (design.md §7): CLIENTLESS for a browser (the `octelium_auth`
   * cookie, Octelium's web Session), CLIENT for `octelium login` without a token and for workload assertions.
   * `status.authentication` records which IdP vouched for whom; the returned token is shown once.
   */
  createIdentityProviderSession(user: Resource, p: {
    type: 'CLIENT' | 'CLIENTLESS'; isBrowser: boolean; expiresAt: number;
    identityProvider: Resource; identifier: string; email?: string; via: 'login' | 'assertion';
  }): { session: Resource; token: string } {
    return this.store.transaction(() => {
      const session = this.createSession(user, p.type, p.expiresAt, undefined, {
        isBrowser: p.isBrowser,
        authentication: {
          setAt: new Date().toISOString(),
          info: {
            type: 'IDENTITY_PROVIDER',
            identityProvider: {
              identityProviderRef: { kind: 'IdentityProvider', name: p.identityProvider.metadata.name, uid: p.identityProvider.metadata.uid },
              identifier: p.identifier, ...(p.email ? { email: p.email } : {}), via: p.via,
            },
          },
        },
      });
      const token = this.tokens.issue({ type: 'session', userName: user.metadata.name, sessionName: session.metadata.name, expiresAt: p.expiresAt });
      return { session, token };
    });
  }

  /** Ends a Session (logout, revoke, idle timeout): deleting it revokes its tokens through the store watch. */
  endSession(name: string): boolean {
    if (!this.store.get('Session', name)) return false;
    this.store.delete('Session', name);
    return true;
  }

  /** Creates a Credential and its secret; the secret is returned once and only its hash is kept. */
  createCredential(input: Resource): CreateCredentialResponse {
    const spec = input.spec as CredentialSpec;
    const user = this.store.getFresh('User', spec.user);
    if (!user) throw new OcteliumError('NOT_FOUND', `user "${spec.user}" not found`);
    const expiresAt = spec.expiresAt ? Date.parse(spec.expiresAt) : undefined;
    if (expiresAt !== undefined && expiresAt <= Date.now()) throw new OcteliumError('INVALID_ARGUMENT', 'spec.expiresAt is in the past');
    return this.store.transaction(() => {
      const base = { userName: user.metadata.name, credentialName: input.metadata.name, expiresAt };
      if (spec.type === 'AUTH_TOKEN') {
        const credential = this.store.create(input);
        return { credential, token: { authenticationToken: this.tokens.issue({ ...base, type: 'auth' }) } };
      }
      const credential = this.store.create(input);
      const session = this.createSession(user, 'CLIENTLESS', expiresAt, credential);
      if (spec.type === 'ACCESS_TOKEN') {
        return { credential, token: { accessToken: this.tokens.issue({ ...base, type: 'access', sessionName: session.metadata.name }) } };
      }
      const clientID = `oc-${randomBytes(12).toString('hex')}`;
      const clientSecret = this.tokens.issue({ ...base, type: 'oauth2-client', sessionName: session.metadata.name, clientID }, newToken('ocs'));
      return { credential, token: { clientID, clientSecret } };
    });
  }

  /** `octelium login`: an auth token becomes a CLIENT Session with its own access token. */
  login(authToken: string): LoginResponse {
    const row = this.tokens.lookup(authToken);
    if (!row || row.type !== 'auth') throw new OcteliumError('UNAUTHENTICATED', 'invalid or expired auth token');
    const user = this.activeUser(row.userName);
    const credential = row.credentialName ? this.store.get('Credential', row.credentialName) : undefined;
    if (!user || !credential || (credential.spec as CredentialSpec).isDisabled) throw new OcteliumError('UNAUTHENTICATED', 'invalid or expired auth token');
    const expiresAt = Math.min(Date.now() + LOGIN_SESSION_TTL_MS, row.expiresAt ?? Infinity);
    return this.store.transaction(() => {
      const session = this.createSession(user, 'CLIENT', expiresAt, credential);
      const accessToken = this.tokens.issue({ type: 'session', userName: user.metadata.name, sessionName: session.metadata.name, expiresAt });
      return { accessToken, expiresAt: new Date(expiresAt).toISOString(), session, user };
    });
  }

  private activeUser(name: string): Resource | undefined {
    const user = this.store.get('User', name);
    return user && !(user.spec as UserSpec).isDisabled ? user : undefined;
  }

  private activeSession(name: string | undefined): Resource | undefined {
    if (!name) return undefined;
    const s = this.store.get('Session', name);
    if (!s) return undefined;
    const spec = s.spec as { expiresAt?: string; state?: string };
    if (spec.state && spec.state !== 'ACTIVE') return undefined;
    if (spec.expiresAt && Date.parse(spec.expiresAt) <= Date.now()) return undefined;
    return s;
  }

  /** Opaque tokens (login Sessions and access-token Credentials); synchronous, no I/O. */
  authenticateOpaque(token: string): Principal | undefined {
    const row = this.tokens.lookup(token);
    if (!row || (row.type !== 'session' && row.type !== 'access')) return undefined;
    const user = this.activeUser(row.userName);
    const session = this.activeSession(row.sessionName);
    if (!user || !session) return undefined;
    if (row.credentialName) {
      const cred = this.store.get('Credential', row.credentialName);
      if (!cred || (cred.spec as CredentialSpec).isDisabled) return undefined;
    }
    return { user, session, via: row.type === 'session' ? 'session' : 'access-token', credentialName: row.credentialName };
  }

  /** Any presented bearer: opaque token or a JWT signed by this cluster. */
  async authenticate(token: string): Promise<Principal | undefined> {
    return this.authenticateSoon(token);
  }

  /**
   * The same as `authenticate`, synchronously when no I/O is needed (an opaque token, or a JWT verified before):
   * the gateway authenticates every request, and a promise plus a microtask turn per request added up. Returns a
   * promise only when a JWT's signature must be verified first.
   */
  authenticateSoon(token: string): Principal | undefined | Promise<Principal | undefined> {
    if (!isJwtShaped(token)) return this.authenticateOpaque(token);
    const cached = this.#jwtCache.get(token);
    if (cached && cached.exp > Date.now() / 1000) return this.#principalOfJwt(cached);
    return this.#verifyJwt(token);
  }

  async #verifyJwt(token: string): Promise<Principal | undefined> {
    const payload = await this.keys.verify(token, this.issuer());
    if (!payload || typeof payload.sid !== 'string' || typeof payload.exp !== 'number') return undefined;
    const entry = { principalKey: payload.sid, exp: payload.exp, claims: claimsOf(payload) };
    this.#jwtCache.set(token, entry);
    return this.#principalOfJwt(entry);
  }

  #principalOfJwt(entry: { principalKey: string; exp: number; claims: ReturnType<typeof claimsOf> }): Principal | undefined {
    const key = entry.principalKey;
    // The Session is re-checked every time, so deleting it (or its Credential/User) revokes the JWT at once.
    const session = this.activeSession(key);
    const userName = (session?.status as { userRef?: { name: string } } | undefined)?.userRef?.name;
    const user = userName ? this.activeUser(userName) : undefined;
    if (!session || !user) return undefined;
    const credName = (session.status as { credentialRef?: { name: string } }).credentialRef?.name;
    return { user, session, via: 'oauth2', credentialName: credName, ...entry.claims };
  }

  /** OAuth2 client-credentials grant for OAUTH2 Credentials. */
  async clientCredentialsToken(clientID: string, clientSecret: string, scope?: string, audience?: string): Promise<{ access_token: string; token_type: 'Bearer'; expires_in: number; scope?: string }> {
    const row = this.tokens.lookupClient(clientID);
    const ok = row && row.type === 'oauth2-client' && hashesEqual(row.hash, hashToken(clientSecret)) && (row.expiresAt === undefined || row.expiresAt > Date.now());
    const session = ok ? this.activeSession(row.sessionName) : undefined;
    const user = ok ? this.activeUser(row.userName) : undefined;
    const cred = ok && row.credentialName ? this.store.get('Credential', row.credentialName) : undefined;
    if (!row || !session || !user || !cred || (cred.spec as CredentialSpec).isDisabled) {
      throw new OcteliumError('UNAUTHENTICATED', 'invalid client credentials');
    }
    const remaining = row.expiresAt ? Math.floor((row.expiresAt - Date.now()) / 1000) : OAUTH2_TOKEN_TTL_S;
    const expiresIn = Math.max(1, Math.min(OAUTH2_TOKEN_TTL_S, remaining));
    const access_token = await this.keys.sign({ sub: user.metadata.uid, sid: session.metadata.name, 'octelium.user': user.metadata.name, client_id: clientID, ...(scope ? { scope } : {}), ...(audience ? { aud: audience } : {}) }, expiresIn, this.issuer());
    return { access_token, token_type: 'Bearer', expires_in: expiresIn, ...(scope ? { scope } : {}) };
  }

  /**
   * Authorization-code grant, consent page: a pasted auth token → its User and AUTH_TOKEN Credential. Any User
   * type: HUMAN users normally sign in through their IdentityProvider instead; workloads and accounts without an
   * IdP use this. Throws UNAUTHENTICATED for a bad token.
   */
  checkAuthTokenForGrant(authToken: string): { user: Resource; credential: Resource; expiresAt?: number } {
    const row = this.tokens.lookup(authToken);
    const user = row?.type === 'auth' ? this.activeUser(row.userName) : undefined;
    const credential = row?.credentialName ? this.store.get('Credential', row.credentialName) : undefined;
    if (!row || !user || !credential || (credential.spec as CredentialSpec).isDisabled) throw new OcteliumError('UNAUTHENTICATED', 'invalid or expired auth token');
    return { user, credential, expiresAt: row.expiresAt };
  }

  /**
   * A CLIENTLESS Session for one OAuth authorization grant (auth code + its refresh tokens). Deleting the Session,
   * its Credential (when an auth token consented) or its User revokes every token of the grant, like any other
   * Session. A grant a person consented to through their IdP keeps that sign-in in `status.authentication`.
   */
  createGrantSession(userName: string, credentialName: string | undefined, expiresAt: number, clientID: string, authentication?: Record<string, unknown>): Resource {
    const user = this.activeUser(userName);
    const credential = credentialName ? this.store.get('Credential', credentialName) : undefined;
    if (!user || (credentialName && (!credential || (credential.spec as CredentialSpec).isDisabled))) throw new OcteliumError('UNAUTHENTICATED', 'the user or credential behind this grant is gone');
    // status.oauth2 names the OAuth client holding the grant, for `octeliumctl get session -o yaml`.
    return this.createSession(user, 'CLIENTLESS', expiresAt, credential, { oauth2: { clientID }, ...(authentication ? { authentication } : {}) });
  }

  /** Grant session still usable? Returns its User, or undefined when revoked/expired. */
  grantSessionUser(sessionName: string): { session: Resource; user: Resource } | undefined {
    const session = this.activeSession(sessionName);
    const userName = (session?.status as { userRef?: { name: string } } | undefined)?.userRef?.name;
    const user = userName ? this.activeUser(userName) : undefined;
    return session && user ? { session, user } : undefined;
  }

  /** An access JWT for a grant Session (authorization_code and refresh_token grants). */
  async mintAccessToken(p: { session: Resource; user: Resource; clientID: string; scope?: string; audience?: string; expiresInSec?: number }): Promise<{ access_token: string; expires_in: number }> {
    const expiresEnd = (p.session.spec as { expiresAt?: string }).expiresAt;
    const remaining = expiresEnd ? Math.floor((Date.parse(expiresEnd) - Date.now()) / 1000) : OAUTH2_TOKEN_TTL_S;
    const expiresIn = Math.max(1, Math.min(p.expiresInSec ?? OAUTH2_TOKEN_TTL_S, remaining));
    const access_token = await this.keys.sign({
      sub: p.user.metadata.uid, sid: p.session.metadata.name, 'octelium.user': p.user.metadata.name, client_id: p.clientID,
      ...(p.scope ? { scope: p.scope } : {}), ...(p.audience ? { aud: p.audience } : {}),
    }, expiresIn, this.issuer());
    return { access_token, expires_in: expiresIn };
  }
}

/** RFC 9068 claims the gateway checks per Service (audience, scope) and logs (client). */
/** Three dot-separated parts, as a compact JWS has (without splitting the token into an array per request). */
function isJwtShaped(token: string): boolean {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  return second >= 0 && token.indexOf('.', second + 1) < 0;
}

function claimsOf(payload: JWTPayload): Pick<Principal, 'audience' | 'scopes' | 'clientID'> {
  const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud.filter((a): a is string => typeof a === 'string') : undefined;
  const scope = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : undefined;
  return {
    ...(aud?.length ? { audience: aud } : {}),
    ...(scope ? { scopes: scope } : {}),
    ...(typeof payload.client_id === 'string' ? { clientID: payload.client_id } : {}),
  };
}
