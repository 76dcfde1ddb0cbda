import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml';
import { parseDomFromString, xpath } from '@node-saml/node-saml/lib/xml.js';
import type { IdentityProviderSpec, Resource } from '@octelium-ts/shared';
import type { limitedFetch } from './limited-fetch.js';
import { IdpFetchError } from './limited-fetch.js';
import type { ReplayCache } from './replay-cache.js';
import { LoginError, type BrowserLoginAdapter, type LoginSecrets, type VerifiedIdentity } from './types.js';

type SamlSpec = NonNullable<IdentityProviderSpec['saml']>;

const METADATA_TTL_MS = 3600_000;
const CLOCK_SKEW_MS = 30_000;
const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const EMAIL_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

/** What the cluster needs of the IdP's metadata: who it is, where to send people, which keys sign. */
interface IdpMetadata { entityID: string; ssoURL: string; certs: string[] }

/** Reads the IdP's metadata (the library's own XML parser and XPath: nothing here checks a signature). */
async function parseMetadata(xml: string): Promise<IdpMetadata> {
  let doc: Document;
  try {
    doc = await parseDomFromString(xml);
  } catch (e) {
    throw new IdpFetchError(`the SAML metadata is not XML (${(e as Error).message.slice(0, 200)})`);
  }
  const entity = xpath.selectElements(doc, "//*[local-name()='EntityDescriptor']")[0];
  const idp = xpath.selectElements(doc, "//*[local-name()='IDPSSODescriptor']")[0];
  const sso = idp && xpath.selectElements(idp, `./*[local-name()='SingleSignOnService' and @Binding='${REDIRECT_BINDING}']`)[0];
  const certs = idp ? xpath.selectElements(idp, "./*[local-name()='KeyDescriptor' and (not(@use) or @use='signing')]//*[local-name()='X509Certificate']")
    .map((c) => (c.textContent ?? '').replace(/\s+/g, '')).filter(Boolean) : [];
  const entityID = entity?.getAttribute('entityID');
  const ssoURL = sso?.getAttribute('Location');
  if (!entityID || !ssoURL) throw new IdpFetchError('the SAML metadata names no IdP entityID or HTTP-Redirect SingleSignOnService');
  if (!certs.length) throw new IdpFetchError('the SAML metadata has no signing certificate');
  return { entityID, ssoURL, certs };
}

/** A cache that knows exactly one AuthnRequest: the one this login sent (InResponseTo must name it). */
function oneRequest(requestId: string, createdAt: string): CacheProvider {
  return {
    saveAsync: async () => null,
    getAsync: async (key: string) => (key === requestId ? createdAt : null),
    removeAsync: async () => null,
  };
}

/**
 * SAML 2.0 service provider through `@node-saml/node-saml` (XML-DSig by the library, xml-crypto underneath):
 * HTTP-Redirect AuthnRequest, HTTP-POST Response to `/callback`. Required: a **signed assertion** by a key from
 * the IdP's metadata, `InResponseTo` naming this login's request, audience = this SP's entity ID,
 * NotBefore/NotOnOrAfter (30 s skew), the IdP's entity ID as issuer; checked here on the verified assertion:
 * a bearer SubjectConfirmation whose `Recipient` is this cluster's `/callback`, and the assertion ID unused
 * (replay cache until NotOnOrAfter). The email is `identifierAttribute`, else an `email`/`mail` attribute, else an
 * emailAddress-format NameID.
 */
export class SamlAdapter implements BrowserLoginAdapter {
  readonly type = 'saml' as const;
  #meta?: { at: number; value: Promise<IdpMetadata> };

  constructor(private readonly idp: Resource, private readonly clusterUrl: () => string, private readonly fetchFn: ReturnType<typeof limitedFetch>, private readonly replay?: ReplayCache) {}

  get #spec(): SamlSpec {
    return (this.idp.spec as IdentityProviderSpec).saml!;
  }

  get #entityID(): string {
    return this.#spec.entityID ?? `${this.clusterUrl()}/saml`;
  }

  #metadata(): Promise<IdpMetadata> {
    if (this.#meta && Date.now() - this.#meta.at < METADATA_TTL_MS) return this.#meta.value;
    const spec = this.#spec;
    const value = (async () => {
      if (spec.metadata !== undefined) return parseMetadata(spec.metadata);
      const res = await this.fetchFn(spec.metadataURL!, { method: 'GET', headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
      if (res.status !== 200) throw new IdpFetchError(`SAML metadata at ${new URL(spec.metadataURL!).origin} answered ${res.status}`);
      return parseMetadata(await res.text());
    })();
    this.#meta = { at: Date.now(), value };
    value.catch(() => {
      if (this.#meta?.value === value) this.#meta = undefined;
    });
    return value;
  }

  async #configured(): Promise<IdpMetadata> {
    try {
      return await this.#metadata();
    } catch (e) {
      throw new LoginError(502, 'Identity provider unavailable', `SAML metadata: ${(e as Error).message}`, 'IDP_UNAVAILABLE');
    }
  }

  #saml(meta: IdpMetadata, callbackUrl: string, cache?: CacheProvider, requestId?: string): SAML {
    return new SAML({
      entryPoint: meta.ssoURL, issuer: this.#entityID, callbackUrl, idpCert: meta.certs, idpIssuer: meta.entityID, audience: this.#entityID,
      wantAssertionsSigned: true, wantAuthnResponseSigned: false, validateInResponseTo: ValidateInResponseTo.always,
      acceptedClockSkewMs: CLOCK_SKEW_MS, identifierFormat: null, disableRequestedAuthnContext: true,
      ...(cache ? { cacheProvider: cache } : {}), ...(requestId ? { generateUniqueId: () => requestId } : {}),
    });
  }

  async probe(): Promise<void> {
    await this.#configured();
  }

  async start(p: { redirectUri: string; state: string }): Promise<{ url: string; secrets: LoginSecrets }> {
    const meta = await this.#configured();
    const requestId = `_${Buffer.from(crypto.getRandomValues(new Uint8Array(20))).toString('hex')}`;
    const createdAt = new Date().toISOString();
    const url = await this.#saml(meta, p.redirectUri, oneRequest(requestId, createdAt), requestId).getAuthorizeUrlAsync(p.state, undefined, {});
    return { url, secrets: { requestId, createdAt } };
  }

  async finish(p: { callback: URL; form?: Record<string, string>; redirectUri: string; state: string; secrets: LoginSecrets }): Promise<VerifiedIdentity> {
    const response = p.form?.SAMLResponse;
    if (!response) throw new LoginError(400, 'Sign-in failed', 'the identity provider sent no SAMLResponse (HTTP-POST binding expected)', 'INVALID_ASSERTION');
    const meta = await this.#configured();
    let profile: Profile | null;
    try {
      ({ profile } = await this.#saml(meta, p.redirectUri, oneRequest(p.secrets.requestId, p.secrets.createdAt)).validatePostResponseAsync({ SAMLResponse: response }));
    } catch (e) {
      throw new LoginError(400, 'Sign-in failed', `SAML response refused: ${(e as Error).message.slice(0, 300)}`, 'INVALID_ASSERTION');
    }
    if (!profile) throw new LoginError(400, 'Sign-in failed', 'the SAML response carries no assertion', 'INVALID_ASSERTION');
    const refuse = (m: string) => new LoginError(400, 'Sign-in failed', `SAML assertion refused: ${m}`, 'INVALID_ASSERTION');
    if (profile.issuer !== meta.entityID) throw refuse(`issued by "${String(profile.issuer).slice(0, 200)}", not "${meta.entityID}"`);
    // Everything read below comes from the verified assertion (the profile is built from the signed XML only).
    const assertion = (profile.getAssertion?.() as { Assertion?: SignedAssertion } | undefined)?.Assertion;
    const confirmations = (assertion?.Subject?.[0]?.SubjectConfirmation ?? []).filter((c) => c.$?.Method === BEARER);
    if (!confirmations.length || !confirmations.every((c) => c.SubjectConfirmationData?.[0]?.$?.Recipient === p.redirectUri)) {
      throw refuse(`its Recipient is not ${p.redirectUri}`);
    }
    const id = assertion?.$?.ID;
    const notOnOrAfter = Date.parse(confirmations[0].SubjectConfirmationData?.[0]?.$?.NotOnOrAfter ?? '') || Date.now() + 3600_000;
    if (!id) throw refuse('it has no ID');
    if (this.replay && !this.replay.firstUse(`saml:${this.idp.metadata.name}`, id, notOnOrAfter + CLOCK_SKEW_MS)) throw refuse('this assertion was already used (replay)');
    const email = this.#email(profile);
    if (!email) throw new LoginError(403, 'No email', `the SAML assertion has no email (set identifierAttribute, send an "email" attribute or an emailAddress NameID)`, 'NO_EMAIL');
    return { email, identifier: profile.nameID };
  }

  #email(profile: Profile): string | undefined {
    const attr = this.#spec.identifierAttribute;
    const pick = (v: unknown) => (typeof v === 'string' && v.includes('@') ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined);
    if (attr) return pick((profile.attributes as Record<string, unknown> | undefined)?.[attr]);
    return pick(profile.email) ?? pick(profile.mail) ?? (profile.nameIDFormat === EMAIL_FORMAT ? profile.nameID : undefined);
  }
}

/** The parts of a verified assertion (xml2js shape, as node-saml's `getAssertion()` gives it) read above. */
interface SignedAssertion {
  $?: { ID?: string };
  Subject?: Array<{ SubjectConfirmation?: Array<{ $?: { Method?: string }; SubjectConfirmationData?: Array<{ $?: { Recipient?: string; NotOnOrAfter?: string } }> }> }>;
}
