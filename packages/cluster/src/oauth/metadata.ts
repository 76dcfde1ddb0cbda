import type { ServiceSpec } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';

/** Scope every MCP Service asks for unless its `mcp.scopes` says otherwise. */
export const DEFAULT_MCP_SCOPE = 'mcp';

/**
 * RFC 8414 authorization server metadata; served unchanged as the OIDC discovery document too (MCP 2025-11-25
 * clients try both), so it carries the OIDC-required fields and `code_challenge_methods_supported`, without
 * which MCP clients refuse to continue.
 */
export function authorizationServerMetadata(issuer: string, store: ResourceStore): Record<string, unknown> {
  const scopes = new Set([DEFAULT_MCP_SCOPE, 'openid']);
  for (const s of store.list('Service')) for (const sc of (s.spec as ServiceSpec).mcp?.scopes ?? []) scopes.add(sc);
  const methods = ['none', 'client_secret_basic', 'client_secret_post'];
  return {
    issuer,
    authorization_endpoint: `${issuer}/oauth2/authorize`,
    token_endpoint: `${issuer}/oauth2/token`,
    registration_endpoint: `${issuer}/oauth2/register`,
    revocation_endpoint: `${issuer}/oauth2/revoke`,
    jwks_uri: `${issuer}/oauth2/jwks`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: methods,
    revocation_endpoint_auth_methods_supported: methods,
    scopes_supported: [...scopes],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['ES256'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'preferred_username', 'email'],
  };
}
