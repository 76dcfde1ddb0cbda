import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AsDeps } from './deps.js';
import { invalidClientMetadata, OAuthError } from './errors.js';
import { OPEN_CORS, readJsonObject, sendJson } from './http.js';
import { parseParams, RegistrationRequest } from './request-schemas.js';
import { sourceKey } from './source-address.js';

/**
 * RFC 7591 §3: `POST /oauth2/register`. Open registration, as MCP clients expect. Each source address gets a
 * token bucket (429 with Retry-After past it, counted before any work is done); size and lifetime of what a
 * registration stores are bounded by the registry.
 */
export async function registrationEndpoint(deps: AsDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405);
  const wait = deps.registrations.take(sourceKey(req));
  if (wait) {
    req.resume();
    throw new OAuthError('temporarily_unavailable', `too many client registrations from this address; retry in ${wait} s`, 429, { 'retry-after': String(wait) });
  }
  const body = await readJsonObject(req);
  if (!body) throw invalidClientMetadata('the registration request must be a JSON object');
  sendJson(res, 201, deps.clients.register(parseParams(RegistrationRequest, body, invalidClientMetadata)), OPEN_CORS);
}
