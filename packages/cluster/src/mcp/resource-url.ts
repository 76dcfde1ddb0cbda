import type { IncomingMessage } from 'node:http';

export const PRM_PREFIX = '/.well-known/oauth-protected-resource';

/**
 * The resource URL a client used, exactly (RFC 9728 §3.3: PRM found through a challenge must name the URL the
 * client requested): the cluster's scheme, the Host as sent (already checked to be one of ours) and the path
 * without query. Works unchanged for the host form and the no-DNS form.
 */
export function requestedResource(req: IncomingMessage, clusterUrl: string): string {
  const scheme = new URL(clusterUrl).protocol;
  const path = (req.url ?? '/').split('?')[0] || '/';
  return `${scheme}//${req.headers.host ?? new URL(clusterUrl).host}${path}`;
}

/** RFC 9728 §3.1 path-inserted metadata URL of a resource (`/.well-known/oauth-protected-resource` + path). */
export function metadataUrlOf(resource: string): string {
  const u = new URL(resource);
  return `${u.origin}${PRM_PREFIX}${u.pathname === '/' ? '' : u.pathname}`;
}

/** Inverse of metadataUrlOf for a request to the metadata URL: the resource it describes. */
export function resourceOfMetadataRequest(req: IncomingMessage, clusterUrl: string): string {
  const scheme = new URL(clusterUrl).protocol;
  const path = (req.url ?? '').split('?')[0].slice(PRM_PREFIX.length);
  return `${scheme}//${req.headers.host ?? new URL(clusterUrl).host}${path || ''}`;
}
