import type { IncomingMessage } from 'node:http';
import { bearerToken } from '../api/http-util.js';
import type { McpRequestState } from './request-state.js';
import { metadataUrlOf, requestedResource } from './resource-url.js';
import type { McpSettings } from './settings.js';

/** Quoted-string safe (RFC 7230 §3.2.6): no quotes or backslashes, printable ASCII. */
function q(s: string): string {
  return s.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
}

/**
 * `WWW-Authenticate` for an MCP Service (MCP 2025-11-25 authorization, RFC 9728 §5.1, RFC 6750 §3):
 * always `resource_metadata` (clients prefer it to probing) and `scope`; `error` only when a token was
 * presented (a request without credentials gets no error code).
 */
export function mcpChallenge(req: IncomingMessage, clusterUrl: string, settings: McpSettings, status: number, state: McpRequestState | undefined): string | undefined {
  const prm = metadataUrlOf(requestedResource(req, clusterUrl));
  const c = state?.challenge;
  if (status === 403 && c?.error === 'insufficient_scope') {
    return `Bearer error="insufficient_scope", scope="${q((c.scopes ?? settings.scopes).join(' '))}", resource_metadata="${q(prm)}", error_description="${q(c.description)}"`;
  }
  if (status !== 401) return undefined;
  const parts = [`resource_metadata="${q(prm)}"`, `scope="${q(settings.scopes.join(' '))}"`];
  if (bearerToken(req)) parts.push(`error="invalid_token"`, `error_description="${q(c?.description ?? 'the access token is invalid or expired')}"`);
  return `Bearer ${parts.join(', ')}`;
}
