import type { IncomingHttpHeaders } from 'node:http';
import { BoundedMap, type AccessLog, type ServiceConfig } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { ResourceStore } from '../store/resource-store.js';
import { REDACTED, redactPaths } from './json-path.js';
import { serializeLog } from '../accesslog/serialize.js';

/** Credential headers: their values are scrubbed, and same-named JSON keys redacted, whatever the config says. */
export const ALWAYS_REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-octelium-auth'];

/**
 * Values shorter than this are not searched for: scrubbing every "abc" from a log would garble it and
 * protects nothing (such a short secret is guessable anyway).
 */
export const MIN_SCRUB_LENGTH = 4;

/** The credential parts of one header value: the whole value, a bearer/basic token, each cookie value. */
function credentialParts(name: string, value: string): string[] {
  const out = [value];
  if (name === 'authorization' || name === 'proxy-authorization') {
    const m = /^\s*\S+\s+(.+)$/.exec(value);
    if (m) out.push(m[1].trim());
  } else if (name === 'cookie' || name === 'set-cookie') {
    for (const pair of value.split(/;\s*/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) out.push(pair.slice(eq + 1));
    }
  }
  return out;
}

/** Values to scrub: each raw value and how it appears inside the log's JSON. */
type Scrubbable = Map<string, string>;

/** Credential parts of the named headers (Node's request headers: lower-case keys, so each name is one lookup). */
function headerValues(headers: IncomingHttpHeaders, names: ReadonlySet<string>, into: Scrubbable): void {
  for (const name of names) addCredential(name, headers[name], into);
}

/** The same for header maps whose keys a plugin may have written in any case (the upstream request's). */
function anyCaseHeaderValues(headers: Record<string, string | string[] | undefined>, names: ReadonlySet<string>, into: Scrubbable): void {
  for (const k in headers) {
    const name = k.toLowerCase();
    if (names.has(name)) addCredential(name, headers[k], into);
  }
}

function addCredential(name: string, v: string | string[] | undefined, into: Scrubbable): void {
  if (v === undefined) return;
  if (typeof v === 'string') for (const [raw, json] of scrubbableParts(name, v)) into.set(raw, json);
  else for (const one of v) for (const [raw, json] of scrubbableParts(name, one)) into.set(raw, json);
}

/**
 * Recently seen credential header values (per header name) and their scrubbable parts. A client sends the same
 * token on every request, and splitting it again each time (a regex, a trim, a length check per part) was a share
 * of each request's redaction. Bounded: at most 256 recent values (of at most 4 KB) per header name stay in memory
 * after their requests end (as the identity service's JWT cache keeps recent tokens); none of it is written anywhere.
 */
const recentParts = new Map<string, BoundedMap<string, ReadonlyArray<readonly [raw: string, json: string]>>>();

function scrubbableParts(name: string, value: string): ReadonlyArray<readonly [raw: string, json: string]> {
  // A value longer than any token we issue (a JWT is ~1 KB) is split each time, not kept.
  if (value.length > MAX_REMEMBERED_VALUE) return partsOf(name, value);
  let byValue = recentParts.get(name);
  if (!byValue) recentParts.set(name, (byValue = new BoundedMap(256)));
  let parts = byValue.get(value);
  if (!parts) byValue.set(value, (parts = partsOf(name, value)));
  return parts;
}
const MAX_REMEMBERED_VALUE = 4096;

function partsOf(name: string, value: string): ReadonlyArray<readonly [raw: string, json: string]> {
  return credentialParts(name, value).filter((p) => p.length >= MIN_SCRUB_LENGTH).map((p) => [p, inJson(p)] as const);
}

/** How a string value appears inside the log's JSON (what the fast path searches for). */
function inJson(v: string): string {
  return NEEDS_JSON_ESCAPE.test(v) ? JSON.stringify(v).slice(1, -1) : v;
}
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Strings (of scrub-worthy length) inside a redacted value. */
function collectStrings(v: unknown, into: Scrubbable): void {
  if (typeof v === 'string') {
    if (v.length >= MIN_SCRUB_LENGTH) into.set(v, inJson(v));
  } else if (v && typeof v === 'object') {
    for (const c of Object.values(v)) collectStrings(c, into);
  }
}

/** Replaces every occurrence of each value in every string, and values under sensitive keys; copy on write. */
function scrub(node: unknown, keys: ReadonlySet<string>, values: readonly string[]): unknown {
  if (typeof node === 'string') {
    let s = node;
    for (const v of values) if (s.includes(v)) s = s.split(v).join(REDACTED);
    return s;
  }
  if (node === null || typeof node !== 'object') return node;
  if (Array.isArray(node)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < node.length; i++) {
      const v = scrub(node[i], keys, values);
      if (v !== node[i]) (out ??= node.slice())[i] = v;
    }
    return out ?? node;
  }
  let out: Record<string, unknown> | undefined;
  for (const [k, child] of Object.entries(node)) {
    const v = keys.has(k.toLowerCase()) && child !== REDACTED ? REDACTED : scrub(child, keys, values);
    if (v !== child) (out ??= { ...(node as Record<string, unknown>) })[k] = v;
  }
  return out ?? node;
}

/**
 * Whether an object key named like a redacted header occurs in the log. Only the bodies and a decision's details
 * carry keys a client, an upstream or a policy chose; every other key of an AccessLog is fixed (shared accesslog.ts),
 * so only those are walked. (It was a case-insensitive regex over the whole JSON text: ~1 % of a request.)
 */
function credentialKeyIn(log: AccessLog, keys: ReadonlySet<string>): boolean {
  const http = log.entry.info.http;
  return hasKey(http.request.bodyMap, keys, 0) || hasKey(http.request.originalBodyMap, keys, 0) || hasKey(http.response.bodyMap, keys, 0) || hasKey(log.entry.common.reason.details, keys, 0);
}

/** Past this depth the walk gives up and answers yes: the slow path then scrubs the whole log. */
const MAX_KEY_DEPTH = 256;

function hasKey(v: unknown, keys: ReadonlySet<string>, depth: number): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (depth > MAX_KEY_DEPTH) return true;
  if (Array.isArray(v)) {
    for (const c of v) if (hasKey(c, keys, depth + 1)) return true;
    return false;
  }
  for (const k in v) if (keys.has(k.toLowerCase()) || hasKey((v as Record<string, unknown>)[k], keys, depth + 1)) return true;
  return false;
}

/**
 * The AccessLog redactor (`accessLogs.redact`): runs before a log is stored, streamed or exported.
 *   1. configured JSON paths in the request and response bodyMaps → "[REDACTED]";
 *   2. JSON keys named like a redacted header (Authorization, Cookie, configured ones) → "[REDACTED]";
 *   3. any current Secret value, and the credential values this request carried in redacted headers
 *      (incoming and upstream-injected), scrubbed from every string of the log (URI, bodies, messages).
 * Secret values are kept in a set refreshed from the store's change feed, so a request never lists Secrets.
 */
export class Redactor {
  #secrets: string[] = [];
  /** The Secret values as they appear inside JSON, computed when the Secrets change rather than per request. */
  #secretsInJson: string[] = [];
  readonly #unwatch: () => void;
  readonly #globalHeaders: Set<string>;

  constructor(private readonly store: ResourceStore, private readonly global: { paths: string[]; headers: string[] }) {
    this.#globalHeaders = new Set([...ALWAYS_REDACTED_HEADERS, ...global.headers.map((h) => h.toLowerCase())]);
    this.#refreshSecrets();
    this.#unwatch = store.watch((c) => c.resource.kind === 'Secret' && this.#refreshSecrets());
  }

  #refreshSecrets(): void {
    const values = new Set<string>();
    for (const s of this.store.list('Secret')) {
      const v = s.data?.value;
      if (typeof v === 'string' && v.length >= MIN_SCRUB_LENGTH) values.add(v);
    }
    // Longest first, so a Secret that contains another is replaced whole.
    this.#secrets = [...values].sort((a, b) => b.length - a.length);
    this.#secretsInJson = this.#secrets.map(inJson);
  }

  #serviceVisibility(log: AccessLog, ctx: GatewayContext | undefined): NonNullable<NonNullable<ServiceConfig['http']>['visibility']> | undefined {
    if (ctx) return ctx.config?.http?.visibility;
    const name = log.entry.common.serviceRef?.name;
    const svc = name ? this.store.get('Service', name) : undefined;
    return (svc?.spec as { config?: ServiceConfig } | undefined)?.config?.http?.visibility;
  }

  /** `ctx`: the gateway request the log describes (its credential headers and Service config). */
  redact = (log: AccessLog, ctx?: GatewayContext): AccessLog => {
    const vis = this.#serviceVisibility(log, ctx);
    const keys = vis?.redactHeaders?.length ? new Set([...this.#globalHeaders, ...vis.redactHeaders.map((h) => h.toLowerCase())]) : this.#globalHeaders;
    const paths = vis?.redactPaths?.length ? [...this.global.paths, ...vis.redactPaths] : this.global.paths;

    let out = log;
    const own: Scrubbable = new Map();
    if (paths.length) {
      const http = log.entry.info.http;
      const removed: unknown[] = [];
      const reqBody = http.request.bodyMap === undefined ? undefined : redactPaths(http.request.bodyMap, paths, removed);
      const origBody = http.request.originalBodyMap === undefined ? undefined : redactPaths(http.request.originalBodyMap, paths, removed);
      const resBody = http.response.bodyMap === undefined ? undefined : redactPaths(http.response.bodyMap, paths, removed);
      // A redacted request field echoed back elsewhere (a response, an error message) is scrubbed there too.
      for (const v of removed) collectStrings(v, own);
      if (reqBody !== http.request.bodyMap || origBody !== http.request.originalBodyMap || resBody !== http.response.bodyMap) {
        const request = { ...http.request, bodyMap: reqBody, ...(origBody === undefined ? {} : { originalBodyMap: origBody }) };
        out = {
          ...log,
          entry: {
            ...log.entry,
            info: { ...log.entry.info, http: { ...http, request, response: { ...http.response, bodyMap: resBody } } },
          },
        };
      }
    }
    if (ctx) {
      headerValues(ctx.req.headers, keys, own);
      anyCaseHeaderValues(ctx.upstreamHeaders, keys, own);
    }
    // Fast path: one serialization (reused later by the store and the exporter) shows whether any secret value
    // or credential-named key occurs at all; usually none does, and the tree walk is skipped.
    const json = serializeLog(out);
    let needed = credentialKeyIn(out, keys) || this.#secretsInJson.some((v) => json.includes(v));
    if (!needed) for (const inLog of own.values()) if ((needed = json.includes(inLog))) break;
    if (!needed) return out;
    const values = own.size ? [...new Set([...this.#secrets, ...own.keys()])].sort((a, b) => b.length - a.length) : this.#secrets;
    return scrub(out, keys, values) as AccessLog;
  };

  close(): void {
    this.#unwatch();
  }
}
