import { parseRequestTarget, type Target } from './request-target.js';

export type { Target } from './request-target.js';

/**
 * Which Service a URL names, for code that looks a URL up rather than serving it (RFC 8707 resource indicators,
 * RFC 9728 metadata paths). Same rules as the listener (request-target.ts); a target the listener would
 * reject names no Service, so this never throws.
 */
export function routeRequest(hostHeader: string | undefined, rawPath: string, domainHost: string): Target {
  try {
    return parseRequestTarget('GET', rawPath, hostHeader, domainHost);
  } catch {
    return { kind: 'cluster', path: '/', query: '' };
  }
}
