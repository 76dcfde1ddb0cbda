import { z } from 'zod';
import { Authorization, NAME_RE, PolicySpec } from './schema/common.js';
import { CredentialSpec, GroupSpec, NamespaceSpec, SecretData, SecretSpec, SessionSpec, UserSpec } from './schema/identity.js';
import { ServiceSpec } from './schema/service.js';
import { IdentityProviderSpec, identityProviderType } from './schema/identity-provider.js';
import type { Resource } from './resource.js';

/** A reference from one resource to another, found by the kind's `refs()`; `path` says where it was written. */
export interface Reference { kind: KindName; name: string; path: string }

export interface Column { header: string; get: (r: Resource) => unknown }

/**
 * Everything the system knows about one kind, declared once: schema (validation + defaults), API path,
 * CLI names and table columns, references, and which parts are secret. API routes, `octeliumctl get`,
 * YAML apply and the store all read this registry — there is no second list of kinds.
 */
export interface KindDef {
  kind: KindName;
  plural: string;
  aliases: string[];
  spec: z.ZodType;
  /** Only Secrets carry `data`; it is write-only and never leaves the cluster through the API. */
  data?: z.ZodType;
  /** Created by the system (login, token exchange); the API refuses writes. */
  readOnly?: boolean;
  /** `octeliumctl apply` handles it by default (Secrets need --include-secret, as in Octelium). */
  applyByDefault: boolean;
  columns: Column[];
  refs: (r: Resource) => Reference[];
}

export const KIND_NAMES = ['Namespace', 'User', 'Group', 'Policy', 'Secret', 'Service', 'Credential', 'Session', 'IdentityProvider'] as const;
export type KindName = (typeof KIND_NAMES)[number];

const age = (r: Resource) => humanAge(r.metadata.createdAt);
export function humanAge(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function policyRefs(auth: z.infer<typeof Authorization> | undefined, path: string): Reference[] {
  return (auth?.policies ?? []).map((name, i) => ({ kind: 'Policy' as const, name, path: `${path}.policies[${i}]` }));
}

/** Every `fromSecret` anywhere under a value, with its path. */
function secretRefs(value: unknown, path: string, out: Reference[] = []): Reference[] {
  if (Array.isArray(value)) value.forEach((v, i) => secretRefs(v, `${path}[${i}]`, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'fromSecret' && typeof v === 'string') out.push({ kind: 'Secret', name: v, path: `${path}.fromSecret` });
      else secretRefs(v, `${path}.${k}`, out);
    }
  }
  return out;
}

/** Splits a Service name `svc` / `svc.ns` into its parts; the default Namespace is `default`. */
export function splitServiceName(name: string): { service: string; namespace: string } {
  const dot = name.indexOf('.');
  return dot < 0 ? { service: name, namespace: 'default' } : { service: name.slice(0, dot), namespace: name.slice(dot + 1) };
}
/** The stored name: `svc` in the default Namespace, `svc.ns` elsewhere (so `svc.default` and `svc` are one Service). */
export function canonicalServiceName(name: string): string {
  const { service, namespace } = splitServiceName(name);
  return namespace === 'default' ? service : `${service}.${namespace}`;
}

type ServiceSpecT = z.infer<typeof ServiceSpec>;
function serviceUpstreamSummary(s: ServiceSpecT): string {
  const u = s.config?.upstream;
  if (!u) return s.dynamicConfig ? 'dynamic' : '';
  if (u.user) return `${u.url ?? ''} via user/${u.user}`;
  if (u.container) return `container ${u.container.image}`;
  return u.url ?? (u.loadbalance ? `${u.loadbalance.endpoints.length} endpoints` : '');
}

/** A Service's STATE column: `Pending (user/x)`, `Running 3/3`, `Failed 0/1 (pull of image … failed …)`, or `Ready`. */
function serviceState(r: Resource): string {
  const st = r.status as { pendingRefs?: string[]; container?: { state: string; replicas: number; ready: number; message?: string } } | undefined;
  if (st?.pendingRefs?.length) return `Pending (${st.pendingRefs.join(', ')})`;
  const c = st?.container;
  if (!c) return 'Ready';
  const counts = `${c.state} ${c.ready}/${c.replicas}`;
  if (c.state === 'Running' || !c.message) return counts;
  return `${counts} (${c.message.length > 80 ? `${c.message.slice(0, 77)}...` : c.message})`;
}

export const KINDS: Record<KindName, KindDef> = {
  Namespace: {
    kind: 'Namespace', plural: 'namespaces', aliases: ['namespace', 'ns'], spec: NamespaceSpec, applyByDefault: true,
    columns: [{ header: 'NAME', get: (r) => r.metadata.name }, { header: 'AGE', get: age }],
    refs: (r) => policyRefs((r.spec as { authorization?: Authorization }).authorization, 'spec.authorization'),
  },
  User: {
    kind: 'User', plural: 'users', aliases: ['user', 'usr'], spec: UserSpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'TYPE', get: (r) => (r.spec as z.infer<typeof UserSpec>).type },
      { header: 'EMAIL', get: (r) => (r.spec as z.infer<typeof UserSpec>).email ?? '' },
      { header: 'GROUPS', get: (r) => ((r.spec as z.infer<typeof UserSpec>).groups ?? []).join(',') },
      { header: 'AGE', get: age },
    ],
    refs: (r) => {
      const s = r.spec as z.infer<typeof UserSpec>;
      return [
        ...(s.groups ?? []).map((name, i) => ({ kind: 'Group' as const, name, path: `spec.groups[${i}]` })),
        ...policyRefs(s.authorization, 'spec.authorization'),
        ...(s.authentication?.identities ?? []).map((id, i) => ({ kind: 'IdentityProvider' as const, name: id.identityProvider, path: `spec.authentication.identities[${i}].identityProvider` })),
      ];
    },
  },
  Group: {
    kind: 'Group', plural: 'groups', aliases: ['group', 'grp'], spec: GroupSpec, applyByDefault: true,
    columns: [{ header: 'NAME', get: (r) => r.metadata.name }, { header: 'AGE', get: age }],
    refs: (r) => policyRefs((r.spec as { authorization?: Authorization }).authorization, 'spec.authorization'),
  },
  Policy: {
    kind: 'Policy', plural: 'policies', aliases: ['policy', 'pol'], spec: PolicySpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'RULES', get: (r) => (r.spec as z.infer<typeof PolicySpec>).rules.length },
      { header: 'AGE', get: age },
    ],
    refs: () => [],
  },
  Secret: {
    kind: 'Secret', plural: 'secrets', aliases: ['secret', 'sec'], spec: SecretSpec, data: SecretData, applyByDefault: false,
    columns: [{ header: 'NAME', get: (r) => r.metadata.name }, { header: 'AGE', get: age }],
    refs: () => [],
  },
  Service: {
    kind: 'Service', plural: 'services', aliases: ['service', 'svc'], spec: ServiceSpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'MODE', get: (r) => (r.spec as ServiceSpecT).mode },
      { header: 'PUBLIC', get: (r) => Boolean((r.spec as ServiceSpecT).isPublic) },
      { header: 'UPSTREAM', get: (r) => serviceUpstreamSummary(r.spec as ServiceSpecT) },
      // References that do not resolve yet (e.g. upstream.user before the User exists), else managed-container health.
      { header: 'STATE', get: serviceState },
      { header: 'AGE', get: age },
    ],
    refs: (r) => {
      const s = r.spec as ServiceSpecT;
      const out: Reference[] = [{ kind: 'Namespace', name: splitServiceName(r.metadata.name).namespace, path: 'metadata.name' }];
      if (s.config?.upstream?.user) out.push({ kind: 'User', name: s.config.upstream.user, path: 'spec.config.upstream.user' });
      s.dynamicConfig?.configs.forEach((c, i) => {
        if (c.upstream?.user) out.push({ kind: 'User', name: c.upstream.user, path: `spec.dynamicConfig.configs[${i}].upstream.user` });
      });
      s.mcp?.federation?.forEach((m, i) => {
        out.push({ kind: 'Service', name: canonicalServiceName(m.service), path: `spec.mcp.federation[${i}].service` });
      });
      out.push(...policyRefs(s.authorization, 'spec.authorization'), ...secretRefs(r.spec, 'spec'));
      return out;
    },
  },
  Credential: {
    kind: 'Credential', plural: 'credentials', aliases: ['credential', 'cred', 'creds'], spec: CredentialSpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'TYPE', get: (r) => (r.spec as z.infer<typeof CredentialSpec>).type },
      { header: 'USER', get: (r) => (r.spec as z.infer<typeof CredentialSpec>).user },
      { header: 'EXPIRES', get: (r) => (r.spec as z.infer<typeof CredentialSpec>).expiresAt ?? 'never' },
      { header: 'AGE', get: age },
    ],
    refs: (r) => [{ kind: 'User', name: (r.spec as z.infer<typeof CredentialSpec>).user, path: 'spec.user' }],
  },
  Session: {
    kind: 'Session', plural: 'sessions', aliases: ['session', 'sess'], spec: SessionSpec, readOnly: true, applyByDefault: false,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'USER', get: (r) => (r.status as { userRef?: { name: string } } | undefined)?.userRef?.name ?? '' },
      { header: 'TYPE', get: (r) => (r.status as { type?: string } | undefined)?.type ?? '' },
      { header: 'EXPIRES', get: (r) => (r.spec as z.infer<typeof SessionSpec>).expiresAt ?? '' },
      { header: 'AGE', get: age },
    ],
    refs: () => [],
  },
  IdentityProvider: {
    kind: 'IdentityProvider', plural: 'identityproviders', aliases: ['identityprovider', 'idp', 'idps'], spec: IdentityProviderSpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'TYPE', get: (r) => identityProviderType(r.spec as IdentityProviderSpec) },
      { header: 'DISPLAY NAME', get: (r) => r.metadata.displayName ?? '' },
      // Set by the cluster when it checks the IdP (discovery, JWKS, metadata): a broken IdP shows here.
      { header: 'STATE', get: (r) => idpState(r) },
      { header: 'AGE', get: age },
    ],
    refs: (r) => secretRefs(r.spec, 'spec'),
  },
};

function idpState(r: Resource): string {
  const st = r.status as { state?: string; message?: string } | undefined;
  if ((r.spec as IdentityProviderSpec).isDisabled) return 'Disabled';
  if (!st?.state) return 'Unknown';
  return st.state === 'Failed' && st.message ? `Failed (${st.message})` : st.state;
}

const BY_NAME = new Map<string, KindDef>();
for (const def of Object.values(KINDS)) {
  for (const n of [def.kind, def.plural, ...def.aliases]) BY_NAME.set(n.toLowerCase(), def);
}

/** Resolves `svc`, `services`, `Service` … to the kind; undefined when unknown. */
export function lookupKind(name: string): KindDef | undefined {
  return BY_NAME.get(name.toLowerCase());
}

export function kindNames(): string {
  return Object.values(KINDS).map((k) => k.aliases[0]).join(', ');
}

/** Returns why `name` is not a valid name for `kind`, or undefined when it is. */
export function nameError(kind: KindName, name: string): string | undefined {
  const parts = kind === 'Service' ? name.split('.') : [name];
  if (kind === 'Service' && parts.length > 2) return 'a Service name is "svc" or "svc.namespace"';
  for (const p of parts) if (!NAME_RE.test(p)) return `"${name}" must be lower-case letters, digits and "-" (at most 63), starting and ending alphanumeric`;
  return undefined;
}
