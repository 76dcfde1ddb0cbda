import type { Resource, ServiceSpec } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import { routeRequest } from '../server/route-host.js';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK_NAMES.has(hostname.toLowerCase());
}

export { hostnameOfHost } from '../server/request-target.js';

/**
 * RFC 8707 resource indicators ↔ Services. A resource URL names a Service exactly when a request to that URL
 * would be routed to it (host form `http://<svc>.<domain>/…` or no-DNS form `http://<domain>/svc/<svc>/…`,
 * any path), or when it is one of the Service's configured `mcp.audiences`. On a loopback cluster,
 * `localhost`, `127.0.0.1` and `[::1]` are the same host (clients use whichever they were given).
 */
export class ResourceIndicators {
  constructor(private readonly store: ResourceStore, private readonly clusterUrl: () => string) {}

  /** Canonical Service name (`svc` or `svc.ns`) a URL is routed to, or undefined (not a Service of this cluster). */
  serviceOf(resource: string): string | undefined {
    let u: URL;
    try {
      u = new URL(resource);
    } catch {
      return undefined;
    }
    if (u.hash || u.username || u.password) return undefined;
    const c = new URL(this.clusterUrl());
    if (u.protocol !== c.protocol || u.port !== c.port) return undefined;
    const domainHost = c.hostname.toLowerCase();
    let host = u.hostname.toLowerCase();
    if (isLoopbackHostname(host) && isLoopbackHostname(domainHost)) host = domainHost;
    // routeRequest treats any unknown host as the cluster host; a resource must be on this cluster's own names.
    if (host !== domainHost && !host.endsWith('.' + domainHost)) return undefined;
    const t = routeRequest(host, u.pathname || '/', domainHost);
    if (t.kind !== 'service') return undefined;
    return t.namespace === 'default' ? t.service : `${t.service}.${t.namespace}`;
  }

  /** Whether a token audience value is acceptable at the Service `name` (its own URLs or a configured alias). */
  audienceMatches(aud: string, serviceName: string, spec: ServiceSpec): boolean {
    return (spec.mcp?.audiences ?? []).includes(aud) || this.serviceOf(aud) === serviceName;
  }

  /** The Service a `resource` parameter names, for the authorization server; undefined = invalid_target. */
  resolve(resource: string): Resource | undefined {
    const name = this.serviceOf(resource);
    if (name) return this.store.get('Service', name);
    return this.store.list('Service').find((s) => ((s.spec as ServiceSpec).mcp?.audiences ?? []).includes(resource));
  }
}
