import { ApiClient } from './api-client.js';
import type { LoginResponse } from './api-types.js';
import { OcteliumError } from './errors.js';
import { lastDomain, listLogins, loadLogin } from './login-state.js';

export interface CliAuthOptions { domain?: string; context?: string; authToken?: string; accessToken?: string }

/**
 * `--domain`, else OCTELIUM_DOMAIN, else `--context` (a stored login, named by its domain), else the current context
 * (`octelium context use`, or the last login). An explicit domain wins over a context so scripts that set one keep
 * meaning exactly that cluster.
 */
export function resolveDomain(opts: { domain?: string; context?: string }): string {
  const explicit = opts.domain || process.env.OCTELIUM_DOMAIN; // an empty variable counts as unset
  if (explicit) return explicit;
  if (opts.context) return contextDomain(opts.context);
  const d = lastDomain();
  if (!d) throw new OcteliumError('INVALID_ARGUMENT', 'no cluster domain: pass --domain or set OCTELIUM_DOMAIN (e.g. localhost:8090), or log in first');
  return d;
}

/** The domain of a stored login named `name`; unknown names list the ones there are. */
export function contextDomain(name: string): string {
  const logins = listLogins();
  const found = logins.find((l) => l.domain === name);
  if (found) return found.domain;
  const known = logins.map((l) => l.domain).join(', ') || 'none';
  throw new OcteliumError('INVALID_ARGUMENT', `no context "${name}": contexts are the clusters you are logged in to (${known}); add one with \`octelium login --domain ${name}\``);
}

/**
 * An authenticated API client for CLI commands. Order, as in Octelium: explicit access token
 * (flag/OCTELIUM_ACCESS_TOKEN), auth token (flag/OCTELIUM_AUTH_TOKEN, exchanged for a Session now),
 * then the Session stored by `octelium login`.
 */
export async function authenticatedClient(opts: CliAuthOptions): Promise<ApiClient> {
  const domain = resolveDomain(opts);
  const client = new ApiClient({ domain });
  const accessToken = opts.accessToken || process.env.OCTELIUM_ACCESS_TOKEN;
  if (accessToken) {
    client.accessToken = accessToken;
    return client;
  }
  const authToken = opts.authToken || process.env.OCTELIUM_AUTH_TOKEN;
  if (authToken) {
    client.accessToken = (await exchangeAuthToken(client, authToken)).accessToken;
    return client;
  }
  const state = loadLogin(domain);
  if (!state) throw new OcteliumError('UNAUTHENTICATED', `not logged in to ${domain}: run \`octelium login --domain ${domain}\` (browser sign-in) or add \`--auth-token <TOKEN>\``);
  client.accessToken = state.accessToken;
  return client;
}

/** Where auth tokens come from, for a person holding one the cluster refused (a typo, a token of another cluster). */
export const AUTH_TOKEN_SOURCES =
  "auth tokens come from the cluster's bootstrap token file (DATA_DIR/bootstrap-token, the root user's, written on its first start) " +
  'or from an admin: `octeliumctl create cred NAME --user USER --type auth-token`';

/** `POST /login` with an auth token; a refusal says where a valid token comes from rather than to try again. */
export async function exchangeAuthToken(client: ApiClient, authToken: string): Promise<LoginResponse> {
  try {
    return await client.login(authToken);
  } catch (err) {
    if (err instanceof OcteliumError && err.httpStatus === 401) {
      throw new OcteliumError('UNAUTHENTICATED', `${client.domain} refused this auth token (${err.message}); ${AUTH_TOKEN_SOURCES}`, err.details, 401);
    }
    throw err;
  }
}
