import type { Principal } from './principal.js';

/**
 * Which tokens the control-plane API (`/api/v1`) accepts. A token stays inside the boundary it was issued for:
 *
 * - login Session tokens (`octelium login`) and access-token Credentials: issued for the API and the gateway;
 * - `client_credentials` JWTs **without** `aud`: an OAUTH2 Credential of the user, cluster-wide as before;
 * - refused: every token of an authorization grant (authorization_code / refresh_token). The user consented to
 *   an MCP client acting at a Service, not to it administering the cluster. Also refused: every token with an
 *   `aud` (RFC 8707 `resource`), which names the Service it was minted for.
 *
 * Returns why the token is refused, or undefined when it is accepted.
 */
export function controlPlaneRefusal(p: Principal): string | undefined {
  if (p.via !== 'oauth2') return undefined;
  const grantClient = (p.session?.status as { oauth2?: { clientID?: string } } | undefined)?.oauth2?.clientID;
  if (grantClient !== undefined) return `this token was issued to the OAuth client "${grantClient}" for MCP Services; it is not valid for the control-plane API`;
  if (p.audience?.length) return `this token is audience-bound to ${p.audience.join(', ')}; it is not valid for the control-plane API`;
  return undefined;
}
