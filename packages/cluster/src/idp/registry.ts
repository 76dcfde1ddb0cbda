import { identityProviderType, type IdentityProviderSpec, type Resource, type UserSpec } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import { AssertionError, AssertionVerifier, assertionIssuer } from './assertion.js';
import { limitedFetch } from './limited-fetch.js';
import type { ReplayCache } from './replay-cache.js';
import { lazyAdapter } from './lazy-adapter.js';
import { LoginError, secretValue, type BrowserLoginAdapter } from './types.js';

export interface IdpStatus { type: string; state: 'Ready' | 'Failed'; message?: string; checkedAt: string }

interface Entry { version: string; idp: Resource; browser?: BrowserLoginAdapter; assertion?: AssertionVerifier }

/**
 * The cluster's IdentityProviders: one adapter per resource (rebuilt when it changes), and their health in
 * `status` (`octeliumctl get idp` shows `Failed (why)` instead of logins failing silently). Each IdP is checked
 * when it is applied, when its Secret changes, and whenever a login through it fails or succeeds.
 */
export class IdentityProviders {
  readonly #entries = new Map<string, Entry>();
  readonly #unwatch: () => void;
  readonly #fetch = limitedFetch();

  readonly #replay?: ReplayCache;

  constructor(private readonly store: ResourceStore, private readonly clusterUrl: () => string, opts: { checkOnStart?: boolean; replay?: ReplayCache } = {}) {
    this.#replay = opts.replay;
    this.#unwatch = store.watch((c) => {
      if (c.resource.kind === 'IdentityProvider') {
        if (c.type === 'DELETED') return void this.#entries.delete(c.resource.metadata.name);
        // Our own status writes change nothing we check.
        if (c.previous && JSON.stringify(c.previous.spec) === JSON.stringify(c.resource.spec)) return;
        this.#entries.delete(c.resource.metadata.name);
        void this.check(c.resource.metadata.name);
      } else if (c.resource.kind === 'Secret') {
        for (const idp of this.store.list('IdentityProvider')) {
          if (JSON.stringify(idp.spec).includes(`"fromSecret":"${c.resource.metadata.name}"`)) {
            this.#entries.delete(idp.metadata.name);
            void this.check(idp.metadata.name);
          }
        }
      }
    });
    if (opts.checkOnStart !== false) setImmediate(() => this.store.list('IdentityProvider').forEach((r) => void this.check(r.metadata.name)));
  }

  close(): void {
    this.#unwatch();
  }

  #entry(name: string): Entry | undefined {
    const idp = this.store.get('IdentityProvider', name);
    if (!idp) return undefined;
    const cached = this.#entries.get(name);
    if (cached && cached.version === idp.metadata.resourceVersion && JSON.stringify(cached.idp.spec) === JSON.stringify(idp.spec)) return cached;
    const spec = idp.spec as IdentityProviderSpec;
    const secret = (ref?: { fromSecret: string }) => () => secretValue(this.store, ref?.fromSecret);
    const entry: Entry = { version: idp.metadata.resourceVersion ?? '', idp };
    const fetchFn = this.#fetch;
    if (spec.oidc) entry.browser = lazyAdapter('oidc', async () => new (await import('./oidc-adapter.js')).OidcAdapter(idp, secret(spec.oidc!.clientSecret), fetchFn));
    else if (spec.github) entry.browser = lazyAdapter('github', async () => new (await import('./github-adapter.js')).GitHubAdapter(idp, secret(spec.github!.clientSecret), fetchFn));
    else if (spec.saml) entry.browser = lazyAdapter('saml', async () => new (await import('./saml-adapter.js')).SamlAdapter(idp, this.clusterUrl, fetchFn, this.#replay));
    else if (spec.oidcIdentityToken) entry.assertion = new AssertionVerifier(idp, this.clusterUrl, this.#fetch);
    this.#entries.set(name, entry);
    return entry;
  }

  /** IdentityProviders a person can log in with, for the /login page. */
  browserProviders(): Resource[] {
    return this.store.list('IdentityProvider')
      .filter((r) => !(r.spec as IdentityProviderSpec).isDisabled && identityProviderType(r.spec as IdentityProviderSpec) !== 'oidcIdentityToken')
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  browser(name: string): { idp: Resource; adapter: BrowserLoginAdapter } | undefined {
    const e = this.#entry(name);
    if (!e?.browser || (e.idp.spec as IdentityProviderSpec).isDisabled) return undefined;
    return { idp: e.idp, adapter: e.browser };
  }

  /** The enabled `oidcIdentityToken` IdP whose issuer is `iss` (at most one may claim an issuer). */
  forIssuer(iss: string): { idp: Resource; verifier: AssertionVerifier } | undefined {
    const matches = this.store.list('IdentityProvider').filter((r) => {
      const s = r.spec as IdentityProviderSpec;
      return !s.isDisabled && s.oidcIdentityToken && assertionIssuer(s.oidcIdentityToken) === iss;
    });
    if (matches.length !== 1) return undefined;
    const e = this.#entry(matches[0].metadata.name)!;
    return { idp: e.idp, verifier: e.assertion! };
  }

  /**
   * The WORKLOAD User whose `spec.authentication.identities` holds (idp, identifier) — exactly one, enabled
   * (Octelium's GetUserFromIdentifier).
   */
  userForIdentity(idpName: string, identifier: string): Resource | undefined {
    const users = this.store.list('User').filter((u) => (u.spec as UserSpec).authentication?.identities?.some((i) => i.identityProvider === idpName && i.identifier === identifier));
    if (users.length !== 1) return undefined;
    const spec = users[0].spec as UserSpec;
    return spec.isDisabled || spec.type !== 'WORKLOAD' ? undefined : users[0];
  }

  /** Checks an IdP now (discovery, JWKS, metadata) and records the outcome in its status. */
  async check(name: string): Promise<IdpStatus | undefined> {
    const e = this.#entry(name);
    if (!e) return undefined;
    try {
      await (e.browser ?? e.assertion)?.probe();
      return this.record(name, undefined);
    } catch (err) {
      return this.record(name, err instanceof LoginError || err instanceof AssertionError || err instanceof Error ? err.message : String(err));
    }
  }

  /** Writes Ready / Failed (message) into the IdP's status when it changed; `failure` undefined = Ready. */
  record(name: string, failure: string | undefined): IdpStatus | undefined {
    const idp = this.store.get('IdentityProvider', name);
    if (!idp) return undefined;
    const current = idp.status as IdpStatus | undefined;
    const next: IdpStatus = { type: identityProviderType(idp.spec as IdentityProviderSpec), state: failure ? 'Failed' : 'Ready', ...(failure ? { message: failure.slice(0, 500) } : {}), checkedAt: new Date().toISOString() };
    if (current?.state === next.state && current.message === next.message) return current;
    try {
      this.store.update({ ...idp, status: { ...next } });
    } catch {
      /* changed meanwhile (409) or being deleted: the next check records it */
    }
    return next;
  }
}
