import { NAME_RE } from '@octelium-ts/shared';

const MAX_REDIRECT = 2048;

/**
 * Where `/callback` may send the browser (the `redirect` parameter): a path on the cluster host, or a URL of one
 * of this cluster's own Service hosts (`<svc>.<domain>`, `<svc>.<ns>.<domain>`, same scheme and port) so that
 * host-form Services get their person back. Anything else — other hosts, `//evil`, `/\evil`, `javascript:`,
 * userinfo tricks, control characters — is refused (undefined), and the caller falls back to /portal.
 * Returns the normalised target.
 */
export function safeRedirect(raw: string | undefined, clusterUrl: string): string | undefined {
  if (!raw || raw.length > MAX_REDIRECT) return undefined;
  // Browsers treat `\` as `/` and drop tabs/newlines inside URLs: any of them could turn a path into a host.
  if (/[\\\x00-\x1f\x7f]/.test(raw)) return undefined;
  const cluster = new URL(clusterUrl);
  if (raw.startsWith('/')) {
    if (raw.startsWith('//')) return undefined;
    let u: URL;
    try {
      u = new URL(raw, cluster);
    } catch {
      return undefined;
    }
    return u.origin === cluster.origin ? `${u.pathname}${u.search}${u.hash}` : undefined;
  }
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  if (u.protocol !== cluster.protocol || u.port !== cluster.port || u.username || u.password) return undefined;
  const host = u.hostname.toLowerCase();
  const domain = cluster.hostname.toLowerCase();
  if (host === domain) return u.href;
  if (!host.endsWith(`.${domain}`)) return undefined;
  const labels = host.slice(0, -(domain.length + 1)).split('.');
  return labels.length <= 2 && labels.every((l) => NAME_RE.test(l)) ? u.href : undefined;
}
