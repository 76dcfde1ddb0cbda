import type { IncomingMessage } from 'node:http';
import { hostnameOfHost, isLoopbackHostname } from '../oauth/index.js';
import type { McpSettings } from './settings.js';

/**
 * DNS-rebinding and cross-origin checks (MCP 2025-11-25 transport: a present-but-invalid Origin gets 403).
 * Host must be one of the cluster's own names — its domain or a `<svc>.<domain>` host — or a loopback name
 * (`localhost`, `127.0.0.1`, `[::1]`), because a rebinding attacker's page reaches us with its own Host name;
 * a page can only send a loopback Host if it was itself served from loopback.
 * Origin, when sent, must be the request's own origin, the cluster's, or one the Service allows.
 */
export function checkHostAndOrigin(req: IncomingMessage, settings: McpSettings, clusterUrl: string): string | undefined {
  const c = new URL(clusterUrl);
  const domainHost = c.hostname.toLowerCase();
  const host = String(req.headers.host ?? '');
  const hostname = hostnameOfHost(host);
  const hostOk = hostname === domainHost || hostname.endsWith('.' + domainHost) || isLoopbackHostname(hostname);
  if (!hostOk) return `Host "${host}" is not a name of this cluster`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined; // not a browser: nothing to rebind
  if (originAllowed(origin, host, settings, c)) return undefined;
  return `Origin "${origin}" is not allowed`;
}

export function originAllowed(origin: string, host: string, settings: McpSettings, cluster: URL): boolean {
  if (settings.allowedOrigins.includes('*') || settings.allowedOrigins.includes(origin)) return true;
  return origin === `${cluster.protocol}//${host}` || origin === cluster.origin;
}

export const CORS_ALLOW_HEADERS = 'Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name, X-Octelium-Auth';

/** CORS response headers for an allowed browser Origin (MCP Inspector and other browser clients). */
export function corsHeaders(origin: string | undefined): Record<string, string> {
  if (!origin) return {};
  return {
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version',
    vary: 'Origin',
  };
}

export function preflightHeaders(origin: string): Record<string, string> {
  return {
    ...corsHeaders(origin),
    'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
    'access-control-allow-headers': CORS_ALLOW_HEADERS,
    'access-control-max-age': '600',
  };
}
