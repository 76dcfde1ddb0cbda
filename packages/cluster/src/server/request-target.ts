import { BoundedMap, NAME_RE, OcteliumError } from '@octelium-ts/shared';
import { tryDecodeComponent } from '../api/uri-component.js';

/**
 * Request-target handling, in one place (RFC 9112 §3.2, RFC 3986 §5.2.4). Everything after this module —
 * routing, policies, plugins, the upstream request, the AccessLog — sees the one normalised path it returns,
 * so no later component can interpret the raw target differently from what was authorized.
 *
 * Normalisation follows Envoy's `normalize_path` + `merge_slashes` (what Octelium's Envoy-based gateway
 * runs with): repeated slashes are merged and `.`/`..` segments (also percent-encoded as `%2e`) are resolved
 * before routing. Where we deliberately differ from Envoy, we are stricter:
 * - a path that climbs above its root (`/..`, or above `/svc/<name>/` in the no-DNS form) is a 400, not clamped
 *   at the root — a client that sends one is probing, and clamping would hide it;
 * - a backslash anywhere in the path is a 400: many upstream URL parsers (WHATWG `new URL`) treat it as `/`,
 *   so `a\..\admin` would reach a path the policy never saw;
 * - `%00`, and an encoded `/` or `\` in a Service name, are a 400.
 */
export type Target =
  | { kind: 'cluster'; /** normalised path, no query */ path: string; /** `?…` or '' */ query: string }
  | { kind: 'service'; service: string; namespace: string; /** normalised path + query forwarded upstream */ path: string };

export function badTarget(message: string): OcteliumError {
  return new OcteliumError('INVALID_REQUEST_TARGET', message);
}

/** Hostname of a Host header (`name:port`, `[v6]:port`), lower-cased. */
export function hostnameOfHost(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase();
  const i = host.lastIndexOf(':');
  return (i >= 0 ? host.slice(0, i) : host).toLowerCase();
}

const DOT = /^(?:\.|%2e)$/i;
const DOT_DOT = /^(?:\.|%2e){2}$/i;
/** A `%` not followed by two hex digits: `decodeURIComponent` would throw, and parsers disagree on it. */
const BAD_PERCENT = /%(?![0-9a-f]{2})/i;

/**
 * Resolves dot segments of `segments` (already split, slashes merged) below a root that cannot be left.
 * A trailing `.`/`..` leaves a trailing slash, as RFC 3986 does.
 */
function resolveDots(segments: string[], rootName: string): string {
  const out: string[] = [];
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1;
    if (DOT.test(seg)) {
      if (last) out.push('');
    } else if (DOT_DOT.test(seg)) {
      if (!out.length || (out.length === 1 && out[0] === '')) throw badTarget(`path climbs above ${rootName}`);
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return '/' + out.join('/');
}

/** `<svc>[.<ns>]` from the no-DNS form's name segment; anything that cannot be a name is a 400. */
function serviceName(raw: string): { service: string; namespace: string } {
  if (/%2f|%5c/i.test(raw)) throw badTarget('a Service name cannot contain an encoded "/" or "\\"');
  if (DOT.test(raw) || DOT_DOT.test(raw)) throw badTarget('path climbs above /svc/');
  const name = tryDecodeComponent(raw);
  if (name === undefined) throw badTarget('bad percent-encoding in the Service name');
  const labels = name.split('.');
  if (labels.length > 2 || !labels.every((l) => NAME_RE.test(l))) throw badTarget(`"${name.slice(0, 64)}" is not a Service name (<name> or <name>.<namespace>)`);
  return { service: labels[0], namespace: labels[1] ?? 'default' };
}

/**
 * Recently parsed targets. A gateway sees the same few targets over and over (`/svc/<name>/mcp` on one host), and
 * the regex checks, splits and dot resolution below were ~2 % of a request's CPU. Only accepted targets are kept,
 * frozen, since every request shares them; the map is bounded and starts over when full, so hostile variety costs
 * a re-parse, never memory.
 */
const recentTargets = new BoundedMap<string, Readonly<Target>>(512);
const MAX_REMEMBERED_TARGET = 2048;

/**
 * Which part of the cluster a request is for (design.md §2): `<svc>.<domain>` and `<svc>.<ns>.<domain>` hosts
 * address Services; on any other host `/svc/<svc>[.<ns>]/<path>` is the no-DNS form of the same thing, and
 * every other path is the cluster's own (API, OAuth, …). Throws a 400 OcteliumError for a target that is not
 * a valid origin-form path.
 */
export function parseRequestTarget(method: string, rawTarget: string, hostHeader: string | undefined, domainHost: string): Readonly<Target> {
  // `*` depends on the method; every other result depends on the target and the hosts only.
  if (rawTarget === '*') return parseUncached(method, rawTarget, hostHeader, domainHost);
  // Long targets are parsed each time, not kept: 512 entries of a few KB at most, whatever clients send.
  if (rawTarget.length + (hostHeader?.length ?? 0) > MAX_REMEMBERED_TARGET) return Object.freeze(parseUncached(method, rawTarget, hostHeader, domainHost));
  const key = `${domainHost}\n${hostHeader ?? ''}\n${rawTarget}`; // neither a header value nor a target holds a newline
  let t = recentTargets.get(key);
  if (!t) {
    t = Object.freeze(parseUncached(method, rawTarget, hostHeader, domainHost));
    recentTargets.set(key, t);
  }
  return t;
}

function parseUncached(method: string, rawTarget: string, hostHeader: string | undefined, domainHost: string): Target {
  let target = rawTarget;
  let host = hostnameOfHost(hostHeader ?? '');
  if (target === '*') {
    if (method === 'OPTIONS') return { kind: 'cluster', path: '*', query: '' };
    throw badTarget('"*" is only a valid request target for OPTIONS');
  }
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target);
  if (absolute) {
    // Absolute-form (RFC 9112 §3.2.2): allowed for our own hosts only — this is not a forward proxy.
    const authority = hostnameOfHost(absolute[1].slice(absolute[1].lastIndexOf('@') + 1));
    if (authority !== domainHost && !authority.endsWith('.' + domainHost)) throw badTarget(`absolute-form request for a foreign host "${authority}"`);
    host = authority;
    target = target.slice(absolute[0].length) || '/';
  }
  if (!target.startsWith('/')) throw badTarget('the request target must be an absolute path starting with "/"');
  if (target.startsWith('//')) throw badTarget('the request target cannot start with "//"');
  if (target.includes('#')) throw badTarget('a request target cannot carry a fragment');
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  if (BAD_PERCENT.test(rawPath)) throw badTarget('bad percent-encoding in the path');
  if (/%00|\0/.test(target)) throw badTarget('NUL in the request target');
  if (rawPath.includes('\\')) throw badTarget('a backslash in the path');
  const segments = rawPath.replace(/\/{2,}/g, '/').split('/').slice(1);

  if (host.endsWith('.' + domainHost)) {
    const labels = host.slice(0, -(domainHost.length + 1)).split('.');
    if (labels.length <= 2 && labels.every(Boolean)) {
      return { kind: 'service', service: labels[0], namespace: labels[1] ?? 'default', path: resolveDots(segments, 'the Service root') + query };
    }
  }
  if (segments[0] === 'svc' && segments.length >= 2) return serviceTarget(segments, query);
  const path = resolveDots(segments, 'the root');
  // `/x/../svc/a/` names a Service only once resolved; the resolved form has no dot segments left.
  if (path.startsWith('/svc/')) return serviceTarget(path.split('/').slice(1), query);
  return { kind: 'cluster', path, query };
}

function serviceTarget(segments: string[], query: string): Target {
  const { service, namespace } = serviceName(segments[1]);
  const rest = segments.slice(2);
  // `/svc/name` and `/svc/name?x` forward `/` (and `/?x`): the Service root.
  const path = rest.length ? resolveDots(rest, `the Service root /svc/${segments[1]}/`) : '/';
  return { kind: 'service', service, namespace, path: path + query };
}
