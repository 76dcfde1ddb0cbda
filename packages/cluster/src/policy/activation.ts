import type { Resource } from '@octelium-ts/shared';
import type { RequestFacts } from '../gateway/request-facts.js';
import type { Activation } from './cel.js';
import { emptyMap, stringMap, toCel, type CelMap } from './values.js';

/**
 * Resources in the store are replaced, never mutated, on update, so a converted copy can be kept per
 * object: the User/Service/Namespace part of `ctx` is converted once, not per request.
 */
const resourceCache = new WeakMap<Resource, CelMap>();

/** `{metadata, spec, status}` of a resource; `data` (Secret values) never reaches CEL. */
export function resourceToCel(r: Resource | undefined): CelMap {
  if (!r) return emptyMap();
  let m = resourceCache.get(r);
  if (!m) {
    m = emptyMap();
    m.set('metadata', toCel(r.metadata ?? {}));
    m.set('spec', toCel(r.spec ?? {}));
    if (r.status) m.set('status', toCel(r.status));
    resourceCache.set(r, m);
  }
  return m;
}

/** Either the activation, or why it could not be built (every rule then fails as an evaluation error). */
export type ActivationResult = { ok: true; activation: Activation } | { ok: false; error: Error };

/**
 * Builds the CEL activation `{ctx}` for one request (design.md §5). Absent parts are empty maps so that
 * `has(ctx.user.spec.email)` is simply false; a missing `bodyMap` is an empty map for the same reason.
 */
export function buildActivation(facts: RequestFacts, namespace: Resource | undefined): ActivationResult {
  try {
    const http = facts.request?.http;
    const req = emptyMap();
    if (http) {
      req.set('method', http.method ?? '');
      req.set('path', http.path ?? '');
      req.set('uri', http.uri ?? '');
      req.set('scheme', http.scheme ?? '');
      req.set('host', http.host ?? '');
      req.set('headers', stringMap(http.headers, true));
      req.set('query', stringMap(http.query, false));
      req.set('bodyMap', http.bodyMap === undefined ? emptyMap() : toCel(http.bodyMap));
      if (http.body !== undefined) req.set('body', http.body);
    }
    const ctx = emptyMap();
    ctx.set('user', resourceToCel(facts.user));
    ctx.set('session', resourceToCel(facts.session));
    ctx.set('service', resourceToCel(facts.service));
    ctx.set('namespace', resourceToCel(namespace));
    const request = emptyMap();
    request.set('http', req);
    ctx.set('request', request);
    return { ok: true, activation: { ctx } };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}
