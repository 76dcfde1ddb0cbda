import type { Resource } from './resource.js';

/** Wire types of the control-plane API (`/api/v1`), shared by the cluster and both CLIs. */
export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'deleted';

export interface ApplyRequest {
  resources: Resource[];
  dryRun?: boolean;
  /** Delete resources of these kinds that are absent from `resources` (system objects are never pruned). */
  prune?: boolean;
  pruneKinds?: string[];
}
export interface ApplyResult { kind: string; name: string; action: ApplyAction }
export interface ApplyResponse { results: ApplyResult[]; warnings: string[] }

export interface ListResponse { items: Resource[] }

/** The secret part of a Credential, returned once at creation. */
export interface CredentialToken {
  authenticationToken?: string;
  accessToken?: string;
  clientID?: string;
  clientSecret?: string;
}
export interface CreateCredentialResponse { credential: Resource; token: CredentialToken }

export interface LoginResponse { accessToken: string; expiresAt: string; session: Resource; user: Resource }
export interface WhoAmIResponse { user: Resource; session?: Resource; isAdmin: boolean }
