import { z } from 'zod';
import { Authorization, Name } from './common.js';
import { UserIdentity } from './identity-provider.js';

export const UserSpec = z.strictObject({
  type: z.enum(['HUMAN', 'WORKLOAD']).default('HUMAN'),
  email: z.email().optional(),
  groups: z.array(Name).optional(),
  authorization: Authorization.optional(),
  isDisabled: z.boolean().optional(),
  info: z.strictObject({ firstName: z.string().optional(), lastName: z.string().optional(), picURL: z.string().optional() }).optional(),
  /** Identities at IdentityProviders that log in as this User (workload OIDC assertions: `identifier` = the token's `sub`). */
  authentication: z.strictObject({ identities: z.array(UserIdentity).max(100).default([]) }).optional(),
});
export type UserSpec = z.infer<typeof UserSpec>;

export const GroupSpec = z.strictObject({ authorization: Authorization.optional() });
export const NamespaceSpec = z.strictObject({ authorization: Authorization.optional() });

export const CredentialTypes = ['AUTH_TOKEN', 'ACCESS_TOKEN', 'OAUTH2'] as const;
export type CredentialType = (typeof CredentialTypes)[number];

export const CredentialSpec = z.strictObject({
  type: z.enum(CredentialTypes).default('AUTH_TOKEN'),
  user: Name,
  expiresAt: z.iso.datetime().optional(),
  sessionType: z.enum(['CLIENT', 'CLIENTLESS']).optional(),
  maxAuthentications: z.number().int().positive().optional(),
  isDisabled: z.boolean().optional(),
  authorization: Authorization.optional(),
});
export type CredentialSpec = z.infer<typeof CredentialSpec>;

export const SessionSpec = z.strictObject({
  expiresAt: z.string().optional(),
  state: z.enum(['ACTIVE', 'REJECTED', 'PENDING']).default('ACTIVE'),
  authorization: Authorization.optional(),
});
export type SessionSpec = z.infer<typeof SessionSpec>;

export const SecretSpec = z.strictObject({});
export const SecretData = z.strictObject({ value: z.string() });
