import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';
import { readBody, sendJSON } from '../api/http-util.js';
import type { IdentityService } from '../auth/identity.js';
import type { KeyRing } from './keyring.js';

/** RFC 6749 §5.2 error response. */
function oauthError(res: ServerResponse, status: number, error: string, description: string): void {
  sendJSON(res, status, { error, error_description: description }, status === 401 ? { 'www-authenticate': 'Basic realm="octelium"' } : {});
}

/** Client authentication: HTTP Basic (RFC 6749 §2.3.1) or client_id/client_secret in the form body. */
function clientCredentials(req: IncomingMessage, form: URLSearchParams): { id?: string; secret?: string } {
  const h = req.headers.authorization;
  if (h?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) return { id: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) };
  }
  return { id: form.get('client_id') ?? undefined, secret: form.get('client_secret') ?? undefined };
}

/** `POST /oauth2/token` (client_credentials) and the JWKS the tokens verify against. */
export function createOAuthHandler(identity: IdentityService, keys: KeyRing) {
  return async function handleOAuth(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (url.pathname === '/oauth2/token') {
      if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'use POST');
      const raw = (await readBody(req, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8');
      const form = String(req.headers['content-type'] ?? '').includes('json')
        ? new URLSearchParams(Object.entries(safeJSON(raw)).map(([k, v]) => [k, String(v)]))
        : new URLSearchParams(raw);
      const grant = form.get('grant_type');
      if (grant !== 'client_credentials') return oauthError(res, 400, 'unsupported_grant_type', 'only grant_type=client_credentials is supported here');
      const { id, secret } = clientCredentials(req, form);
      if (!id || !secret) return oauthError(res, 401, 'invalid_client', 'client_id and client_secret are required');
      try {
        return sendJSON(res, 200, await identity.clientCredentialsToken(id, secret, form.get('scope') ?? undefined));
      } catch (e) {
        if (e instanceof OcteliumError && e.httpStatus === 401) return oauthError(res, 401, 'invalid_client', e.message);
        throw e;
      }
    }
    if (url.pathname === '/oauth2/jwks' || url.pathname === '/.well-known/jwks.json') return sendJSON(res, 200, keys.jwks());
    sendJSON(res, 404, { error: 'not_found' });
  };
}

function safeJSON(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}
