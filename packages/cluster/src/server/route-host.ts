/** Which part of the cluster a request is for, from its Host header and path (design.md §2). */
export type Target =
  | { kind: 'cluster' }
  | { kind: 'service'; service: string; namespace: string; /** path forwarded upstream */ path: string };

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const i = hostHeader.lastIndexOf(':');
  return (i >= 0 ? hostHeader.slice(0, i) : hostHeader).toLowerCase();
}

/**
 * `<svc>.<domain>` and `<svc>.<ns>.<domain>` address Services; any other host is the cluster host,
 * where `/svc/<svc>[.<ns>]/<path>` is the no-DNS form of the same thing.
 */
export function routeRequest(hostHeader: string | undefined, rawPath: string, domainHost: string): Target {
  const host = hostnameOf(hostHeader ?? '');
  if (host.endsWith('.' + domainHost)) {
    const labels = host.slice(0, -(domainHost.length + 1)).split('.');
    if (labels.length === 1) return { kind: 'service', service: labels[0], namespace: 'default', path: rawPath };
    if (labels.length === 2) return { kind: 'service', service: labels[0], namespace: labels[1], path: rawPath };
  }
  if (rawPath.startsWith('/svc/')) {
    const rest = rawPath.slice(5);
    const end = rest.search(/[/?]/);
    const name = end < 0 ? rest : rest.slice(0, end);
    let path = end < 0 ? '/' : rest.slice(end);
    if (path.startsWith('?')) path = '/' + path;
    const [service, namespace = 'default'] = decodeURIComponent(name).split('.');
    return { kind: 'service', service, namespace, path };
  }
  return { kind: 'cluster' };
}
