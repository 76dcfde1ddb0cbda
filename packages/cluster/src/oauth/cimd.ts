import { Agent, request } from 'undici';
import { isIP } from 'node:net';
import { invalidClient, invalidClientMetadata, invalidRedirectUri } from './errors.js';
import { guardedLookup, isAllowedAddress } from '../net/ssrf.js';
import { isLoopbackHostname } from './resource-indicators.js';
import { BoundedMap } from '@octelium-ts/shared';

/** The subset of client metadata the authorization server acts on (RFC 7591 names). */
export interface ClientMetadata {
  client_id: string;
  redirect_uris: string[];
  client_name?: string;
  client_uri?: string;
  token_endpoint_auth_method: string;
  grant_types: string[];
  response_types: string[];
  scope?: string;
}

const MAX_DOCUMENT = 32 * 1024;
const TIMEOUT_MS = 5_000;
const DEFAULT_TTL_MS = 5 * 60_000;
const MAX_TTL_MS = 24 * 3600_000;
const CACHE_MAX = 1_000;

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25): a `client_id`
 * that is an https URL names a JSON document describing the client, fetched by the authorization server.
 *
 * The fetch is a server-side request to an attacker-chosen URL, so: https only; no userinfo/fragment; a path is
 * required; the host must resolve to public addresses only, and the connection goes to the checked address;
 * no redirects; 5 s timeout; 32 KiB cap; cached per Cache-Control (bounded). `allowLoopbackHttp` (a dev/test flag,
 * off by default) admits `http://localhost|127.0.0.1|[::1]` documents and loopback addresses.
 */
export class CimdResolver {
  readonly #cache = new BoundedMap<string, { doc: ClientMetadata; expiresAt: number }>(CACHE_MAX);
  readonly #agent: Agent;

  constructor(private readonly allowLoopbackHttp = false) {
    this.#agent = new Agent({ connect: { lookup: guardedLookup(allowLoopbackHttp), timeout: TIMEOUT_MS }, keepAliveTimeout: 1_000 });
  }

  /** Whether a client_id is meant as a metadata document URL (and not a registered client id). */
  static isUrlClientId(clientId: string): boolean {
    return /^https?:\/\//i.test(clientId);
  }

  /** Checks the URL shape before anything is fetched; throws invalid_client with the reason. */
  checkUrl(clientId: string): URL {
    let u: URL;
    try {
      u = new URL(clientId);
    } catch {
      throw invalidClient('client_id is not a valid URL');
    }
    const loopbackHttp = this.allowLoopbackHttp && u.protocol === 'http:' && isLoopbackHostname(u.hostname);
    if (u.protocol !== 'https:' && !loopbackHttp) throw invalidClient('a URL client_id must use https');
    if (u.username || u.password || u.hash) throw invalidClient('a URL client_id must not carry userinfo or a fragment');
    if (u.pathname === '/' || u.pathname === '') throw invalidClient('a URL client_id must have a path');
    const literal = u.hostname.replace(/^\[|\]$/g, '');
    if (isIP(literal) && !isAllowedAddress(literal, this.allowLoopbackHttp)) throw invalidClient(`client_id host ${u.hostname} is not a public address`);
    if (!this.allowLoopbackHttp && u.hostname.toLowerCase() === 'localhost') throw invalidClient('client_id host localhost is not allowed');
    return u;
  }

  async resolve(clientId: string): Promise<ClientMetadata> {
    const hit = this.#cache.get(clientId);
    if (hit && hit.expiresAt > Date.now()) return hit.doc;
    const url = this.checkUrl(clientId);
    let status: number, headers: Record<string, string | string[] | undefined>, body: Buffer;
    try {
      const r = await request(url, {
        dispatcher: this.#agent, method: 'GET', headers: { accept: 'application/json' },
        headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS,
      });
      status = r.statusCode;
      headers = r.headers;
      body = await readCapped(r.body);
    } catch (e) {
      throw invalidClient(`client metadata document could not be fetched: ${(e as Error).message}`);
    }
    if (status !== 200) throw invalidClient(`client metadata document answered HTTP ${status} (redirects are not followed)`);
    if (!String(headers['content-type'] ?? '').includes('json')) throw invalidClient('client metadata document is not JSON');
    const doc = validateDocument(clientId, body);
    this.#cache.set(clientId, { doc, expiresAt: Date.now() + ttlOf(headers['cache-control']) });
    return doc;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

async function readCapped(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += c.length;
    if (size > MAX_DOCUMENT) throw new Error(`document larger than ${MAX_DOCUMENT} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function ttlOf(cacheControl: string | string[] | undefined): number {
  const cc = String(cacheControl ?? '');
  if (/no-store|no-cache/i.test(cc)) return 0;
  const m = /max-age=(\d+)/i.exec(cc);
  return m ? Math.min(Number(m[1]) * 1000, MAX_TTL_MS) : DEFAULT_TTL_MS;
}

function validateDocument(clientId: string, body: Buffer): ClientMetadata {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalidClient('client metadata document is not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalidClient('client metadata document is not a JSON object');
  if (doc.client_id !== clientId) throw invalidClient('client metadata document: client_id must equal the document URL');
  // A document is public: anything secret in it is already compromised, and shared-secret auth makes no sense.
  if ('client_secret' in doc || 'client_secret_expires_at' in doc) throw invalidClient('client metadata document must not contain a client_secret');
  const method = doc.token_endpoint_auth_method ?? 'none';
  if (method !== 'none') throw invalidClient(`client metadata document: token_endpoint_auth_method "${String(method)}" is not supported (use "none")`);
  return { ...normalizeClientMetadata(doc), client_id: clientId, token_endpoint_auth_method: 'none' };
}

/** Shared by DCR and CIMD: the fields we keep, validated (throws invalid_client_metadata / invalid_redirect_uri). */
export function normalizeClientMetadata(doc: Record<string, unknown>): Omit<ClientMetadata, 'client_id' | 'token_endpoint_auth_method'> {
  const uris = doc.redirect_uris;
  if (!Array.isArray(uris) || !uris.length || !uris.every((u) => typeof u === 'string')) {
    throw invalidRedirectUri('redirect_uris must be a non-empty array of strings');
  }
  for (const u of uris as string[]) checkRedirectUri(u);
  const grantTypes = doc.grant_types === undefined ? ['authorization_code'] : doc.grant_types;
  if (!Array.isArray(grantTypes) || !grantTypes.every((g) => g === 'authorization_code' || g === 'refresh_token')) {
    throw invalidClientMetadata('grant_types may contain only "authorization_code" and "refresh_token"');
  }
  const responseTypes = doc.response_types === undefined ? ['code'] : doc.response_types;
  if (!Array.isArray(responseTypes) || responseTypes.some((r) => r !== 'code')) {
    throw invalidClientMetadata('response_types may contain only "code"');
  }
  const str = (k: string) => (typeof doc[k] === 'string' && (doc[k] as string).length <= 500 ? (doc[k] as string) : undefined);
  return {
    redirect_uris: uris as string[],
    grant_types: grantTypes as string[],
    response_types: responseTypes as string[],
    ...(str('client_name') ? { client_name: str('client_name') } : {}),
    ...(str('client_uri') ? { client_uri: str('client_uri') } : {}),
    ...(str('scope') ? { scope: str('scope') } : {}),
  };
}

/** Schemes that must never receive an authorization code: they run code or read local data. */
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'ws:', 'wss:', 'ftp:']);

/**
 * OAuth 2.1 / RFC 8252 redirect URIs: https; http only to a loopback host (native apps); or a private-use
 * scheme (`com.example.app:/cb`, `cursor://…`). No fragments. They are later matched exactly.
 */
export function checkRedirectUri(uri: string): void {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw invalidRedirectUri(`redirect URI "${uri}" is not an absolute URI`);
  }
  const bad = (why: string) => invalidRedirectUri(`redirect URI "${uri}" ${why}`);
  if (u.hash || uri.includes('#')) throw bad('must not contain a fragment');
  if (FORBIDDEN_SCHEMES.has(u.protocol)) throw bad(`uses the forbidden scheme ${u.protocol}`);
  if (u.protocol === 'http:' && !isLoopbackHostname(u.hostname)) throw bad('uses http to a non-loopback host (use https)');
}
