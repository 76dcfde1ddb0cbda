import type { IncomingHttpHeaders } from 'node:http';
import type { AccessLog, ServiceConfig } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayHooks } from '../gateway/deps.js';
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

function headerValues(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, names: ReadonlySet<string>, into: Set<string>): void {
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || !names.has(k.toLowerCase())) continue;
    for (const one of Array.isArray(v) ? v : [v]) for (const part of credentialParts(k.toLowerCase(), one)) if (part.length >= MIN_SCRUB_LENGTH) into.add(part);
  }
}

/** Strings (of scrub-worthy length) inside a redacted value. */
function collectStrings(v: unknown, into: Set<string>): void {
  if (typeof v === 'string') {
    if (v.length >= MIN_SCRUB_LENGTH) into.add(v);
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
 * The AccessLog redactor (`accessLogs.redact`): runs before a log is stored, streamed or exported.
 *   1. configured JSON paths in the request and response bodyMaps → "[REDACTED]";
 *   2. JSON keys named like a redacted header (Authorization, Cookie, configured ones) → "[REDACTED]";
 *   3. any current Secret value, and the credential values this request carried in redacted headers
 *      (incoming and upstream-injected), scrubbed from every string of the log (URI, bodies, messages).
 * Secret values are kept in a set refreshed from the store's change feed, so a request never lists Secrets.
 */
const keyPatterns = new Map<string, RegExp>();
/**
 * One case-insensitive regex per key set: finds `"authorization":`-like keys in one pass without a lower-cased
 * copy of the log. Cached by content, since per-Service key sets are rebuilt per request.
 */
function keyPattern(keys: ReadonlySet<string>): RegExp {
  const id = [...keys].join('\n');
  let re = keyPatterns.get(id);
  if (!re) {
    if (keyPatterns.size > 1000) keyPatterns.clear();
    re = new RegExp(`"(?:${[...keys].map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})":`, 'i');
    keyPatterns.set(id, re);
  }
  return re;
}

export class Redactor {
  #secrets: string[] = [];
  readonly #unwatch: () => void;
  readonly #globalHeaders: Set<string>;
  /** Requests in flight by id: the log's redaction needs its request's headers and effective config. */
  readonly #live = new Map<string, GatewayContext>();

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
  }

  hooks(): GatewayHooks {
    return {
      onRequest: (ctx) => void this.#live.set(ctx.requestId, ctx),
      onResponse: (ctx) => void this.#live.delete(ctx.requestId),
    };
  }

  #serviceVisibility(log: AccessLog, ctx: GatewayContext | undefined): NonNullable<NonNullable<ServiceConfig['http']>['visibility']> | undefined {
    if (ctx) return ctx.config?.http?.visibility;
    const name = log.entry.common.serviceRef?.name;
    const svc = name ? this.store.get('Service', name) : undefined;
    return (svc?.spec as { config?: ServiceConfig } | undefined)?.config?.http?.visibility;
  }

  redact = (log: AccessLog): AccessLog => {
    const ctx = this.#live.get(log.metadata.id);
    const vis = this.#serviceVisibility(log, ctx);
    const keys = vis?.redactHeaders?.length ? new Set([...this.#globalHeaders, ...vis.redactHeaders.map((h) => h.toLowerCase())]) : this.#globalHeaders;
    const paths = vis?.redactPaths?.length ? [...this.global.paths, ...vis.redactPaths] : this.global.paths;

    let out = log;
    const own = new Set<string>();
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
      headerValues(ctx.upstreamHeaders, keys, own);
    }
    const values = own.size ? [...new Set([...this.#secrets, ...own])].sort((a, b) => b.length - a.length) : this.#secrets;
    // Fast path: one serialization (reused later by the store and the exporter) shows whether any secret value
    // or credential-named key occurs at all; usually none does, and the tree walk is skipped.
    const json = serializeLog(out);
    const needed = keyPattern(keys).test(json) || values.some((v) => json.includes(JSON.stringify(v).slice(1, -1)));
    return needed ? (scrub(out, keys, values) as AccessLog) : out;
  };

  close(): void {
    this.#unwatch();
    this.#live.clear();
  }
}
