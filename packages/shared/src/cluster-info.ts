/** Where a client finds the cluster: domain → base URL (loopback domains use plain HTTP, others HTTPS). */
export function isLoopbackDomain(domain: string): boolean {
  const host = domain.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\./.test(host);
}

export function clusterURL(domain: string): string {
  const d = domain.replace(/\/+$/, '');
  if (/^https?:\/\//.test(d)) return d;
  return `${isLoopbackDomain(d) ? 'http' : 'https'}://${d}`;
}

/** Contents of `DATA_DIR/cluster.json`, written once the listener is up. */
export interface ClusterInfo { url: string; port: number; domain: string }

export const API_PREFIX = '/api/v1';
