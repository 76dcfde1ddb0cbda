import type { ServerResponse } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';
import { OPEN_CORS, sendJson } from './http.js';

/** An OAuth error as RFC 6749 §5.2 / RFC 7591 §3.2.2 put it on the wire: a stable `error` string and a description. */
export class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string, readonly status = 400, readonly headers: Record<string, string> = {}) {
    super(description);
    this.name = 'OAuthError';
  }

  send(res: ServerResponse): void {
    // RFC 6749 §5.2: a failed client authentication is a 401 with a challenge for the scheme the client used.
    const extra: Record<string, string> = this.status === 401 ? { 'www-authenticate': 'Basic realm="octelium"' } : {};
    sendJson(res, this.status, { error: this.error, error_description: this.description }, { ...OPEN_CORS, ...extra, ...this.headers });
  }
}

export const invalidRequest = (d: string) => new OAuthError('invalid_request', d);
export const invalidClient = (d: string) => new OAuthError('invalid_client', d, 401);
export const invalidGrant = (d: string) => new OAuthError('invalid_grant', d);
export const invalidTarget = (d: string) => new OAuthError('invalid_target', d);
export const invalidScope = (d: string) => new OAuthError('invalid_scope', d);
export const unauthorizedClient = (d: string) => new OAuthError('unauthorized_client', d);
export const invalidClientMetadata = (d: string) => new OAuthError('invalid_client_metadata', d);
export const invalidRedirectUri = (d: string) => new OAuthError('invalid_redirect_uri', d);

/**
 * The OAuth form of an error thrown below an endpoint: OAuth errors as they are; the cluster's own client errors
 * (a body too large, malformed percent-encoding, a non-object JSON body) as `invalid_request` with their status.
 * Anything else is a bug: undefined, and the caller answers 500.
 */
export function asOAuthError(e: unknown): OAuthError | undefined {
  if (e instanceof OAuthError) return e;
  if (e instanceof OcteliumError && e.httpStatus >= 400 && e.httpStatus < 500) return new OAuthError('invalid_request', e.message, e.httpStatus);
  return undefined;
}
