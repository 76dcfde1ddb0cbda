import type { IncomingMessage, ServerResponse } from 'node:http';
import { OPEN_CORS, sendJson } from '../oauth/http.js';
import type { McpSettings } from './settings.js';

/**
 * RFC 9728 Protected Resource Metadata for one MCP endpoint. `resource` is exactly the URL the client used
 * (so the strict §3.3 check holds for every client); `scopes_supported` is the minimal baseline (never
 * `offline_access`); the cluster is the authorization server.
 */
export function protectedResourceMetadata(resource: string, issuer: string, settings: McpSettings, serviceName: string): Record<string, unknown> {
  return {
    resource,
    authorization_servers: [issuer],
    scopes_supported: settings.scopes,
    bearer_methods_supported: ['header'],
    resource_name: serviceName,
  };
}

/** Sends a metadata document (no auth, CORS open: browser clients fetch it cross-origin). */
export function sendMetadata(req: IncomingMessage, res: ServerResponse, doc: Record<string, unknown>): void {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, OPEN_CORS).end();
    return;
  }
  sendJson(res, 200, doc, { ...OPEN_CORS, 'cache-control': 'public, max-age=300' });
}
