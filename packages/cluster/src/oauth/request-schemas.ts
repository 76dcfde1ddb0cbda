import { z } from 'zod';
import { OcteliumError } from '@octelium-ts/shared';
import { parseInput } from '../api/parse-input.js';
import { invalidRequest, type OAuthError } from './errors.js';

/**
 * One schema per endpoint for what it reads from a form, a query or a JSON body. Values arrive as strings from
 * forms and queries but as anything from JSON (`{"grant_type": {"toString": 1}}`), so nothing is used before
 * it has passed its schema. A repeated form parameter arrives as an array and fails a single-value field
 * (RFC 6749 §3.1: parameters must not be included more than once). Unknown parameters are ignored (§3.1).
 */

/** Long enough for any real value (a code, a JWT-sized token, a URL); a bound on what we hash or compare. */
const MAX_PARAM = 8 * 1024;
const param = z.string().max(MAX_PARAM);
const optional = param.optional();
/** RFC 8707 lets `resource` repeat; the endpoints refuse more than one themselves (`invalid_target`). */
const resources = z.union([param, z.array(param).max(10)]).optional().transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]));

export const TokenRequest = z.object({
  grant_type: optional,
  client_id: optional,
  client_secret: optional,
  scope: optional,
  resource: resources,
  code: optional,
  code_verifier: optional,
  redirect_uri: optional,
  refresh_token: optional,
  /** RFC 7523 jwt-bearer: a workload's OIDC token; idp/assertion.ts bounds it again (MAX_ASSERTION_BYTES). */
  assertion: z.string().max(16 * 1024).optional(),
});
export type TokenRequest = z.infer<typeof TokenRequest>;

export const RevocationRequest = z.object({ token: optional, token_type_hint: optional, client_id: optional, client_secret: optional });
export type RevocationRequest = z.infer<typeof RevocationRequest>;

export const AuthorizeQuery = z.object({
  client_id: optional,
  redirect_uri: optional,
  response_type: optional,
  state: optional,
  scope: optional,
  nonce: optional,
  code_challenge: optional,
  code_challenge_method: optional,
  resource: resources,
  /** Back from `/login` (an IdP sign-in started on the consent page): the pending request to show again. */
  request_id: optional,
});
export type AuthorizeQuery = z.infer<typeof AuthorizeQuery>;

/** `session`: the browser Session the page was shown for, when the person consents as their signed-in self. */
export const ConsentForm = z.object({ request_id: optional, csrf: optional, action: optional, auth_token: optional, session: optional });
export type ConsentForm = z.infer<typeof ConsentForm>;

/**
 * RFC 7591 §2 fields the registry reads. Their values are checked further by `normalizeClientMetadata`
 * (shared with CIMD); the types are checked here so that no object reaches a string operation.
 */
export const RegistrationRequest = z.looseObject({
  redirect_uris: z.array(param).max(20).optional(),
  token_endpoint_auth_method: optional,
  grant_types: z.array(param).max(10).optional(),
  response_types: z.array(param).max(10).optional(),
  client_name: optional,
  client_uri: optional,
  scope: optional,
});

/** Parses request parameters; the problems become one OAuth error (`invalid_request` unless told). */
export function parseParams<T extends z.ZodType>(schema: T, raw: unknown, fail: (d: string) => OAuthError = invalidRequest): z.output<T> {
  try {
    return parseInput(schema, raw ?? {}, 'request parameters');
  } catch (e) {
    if (e instanceof OcteliumError) throw fail(e.message);
    throw e;
  }
}
