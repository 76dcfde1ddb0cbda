import { z } from 'zod';
import { Authorization, NAME_RE, PolicySpec } from './schema/common.js';
import { CredentialSpec, GroupSpec, NamespaceSpec, SecretData, SecretSpec, SessionSpec, UserSpec } from './schema/identity.js';
import { ServiceSpec } from './schema/service.js';
import { IdentityProviderSpec, identityProviderType } from './schema/identity-provider.js';
import type { Resource } from './resource.js';

/** A reference from one resource to another, found by the kind's `refs()`; `path` says where it was written. */
export interface Reference { kind: KindName; name: string; path: string }

/** A table column of `octeliumctl get`; `wide` ones show only with `-o wide`, after the others but before AGE. */
export interface Column<R = Resource> { header: string; get: (r: R) => unknown; wide?: boolean }

/** A resource whose `spec` has the kind's own type (what `defineKind` hands to columns, refs and filters). */
export type ResourceOf<S> = Resource & { spec: S };

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
  /** The one stored name for a name as written (Services: `svc.default` is `svc`). */
  canonicalName: (name: string) => string;
  /** List filters the API offers as query parameters (`?user=`, `?namespace=`): parameter → does `r` match `value`. */
  listFilters: Record<string, (r: Resource, value: string) => boolean>;
  /** Created through the identity service, which mints a token shown only in the create response (Credentials). */
  issuesToken?: boolean;
  /** References to this owner kind never block deleting the owner: these resources go with it (a User's Credentials). */
  ownedBy?: KindName;
}

/** What a kind declares; `defineKind` types `spec` for its columns, refs and filters and fills the defaults. */
interface KindDeclaration<S> extends Omit<KindDef, 'spec' | 'columns' | 'refs' | 'canonicalName' | 'listFilters'> {
  spec: z.ZodType<S>;
  columns: Array<Column<ResourceOf<S>>>;
  refs?: (r: ResourceOf<S>) => Reference[];
  canonicalName?: (name: string) => string;
  listFilters?: Record<string, (r: ResourceOf<S>, value: string) => boolean>;
}

/**
 * Declares a kind. The one place a resource's `spec` is narrowed to its schema's type: the registry stores
 * resources of every kind, and each kind's code below sees its own spec type without casts.
 */
export function defineKind<S>(d: KindDeclaration<S>): KindDef {
  return {
    ...d,
    spec: d.spec,
    columns: d.columns as Column[],
    refs: (d.refs ?? (() => [])) as (r: Resource) => Reference[],
    canonicalName: d.canonicalName ?? ((name) => name),
    listFilters: (d.listFilters ?? {}) as KindDef['listFilters'],
  };
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

/** The policies attached to a resource, for a wide column: `name,name,+2 inline`. */
function policySummary(auth: z.infer<typeof Authorization> | undefined): string {
  const inline = auth?.inlinePolicies?.length ?? 0;
  return [...(auth?.policies ?? []), ...(inline ? [`+${inline} inline`] : [])].join(',');
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

/**
 * A Service's STATE column: `Pending (user/x)`, `Running 3/3`, `Failed 0/1 (pull of image … failed …)`, or
 * `Configured`. It says whether the configuration resolves and managed containers run — never whether an upstream
 * answers, which the cluster does not probe (a refused connection shows as a 502 in `octeliumctl logs`); `Configured`
 * rather than `Ready`, so nobody reads it as "reachable".
 */
function serviceState(r: ResourceOf<ServiceSpecT>): string {
  const st = r.status as { pendingRefs?: string[]; container?: { state: string; replicas: number; ready: number; message?: string } } | undefined;
  if (st?.pendingRefs?.length) return `Pending (${st.pendingRefs.join(', ')})`;
  const c = st?.container;
  if (!c) return 'Configured';
  const counts = `${c.state} ${c.ready}/${c.replicas}`;
  if (c.state === 'Running' || !c.message) return counts;
  return `${counts} (${c.message.length > 80 ? `${c.message.slice(0, 77)}...` : c.message})`;
}

export const KINDS: Record<KindName, KindDef> = {
  Namespace: defineKind({
    kind: 'Namespace', plural: 'namespaces', aliases: ['namespace', 'ns'], spec: NamespaceSpec, applyByDefault: true,
    columns: [{ header: 'NAME', get: (r) => r.metadata.name }, { header: 'AGE', get: age }],
    refs: (r) => policyRefs(r.spec.authorization, 'spec.authorization'),
  }),
  User: defineKind({
    kind: 'User', plural: 'users', aliases: ['user', 'usr'], spec: UserSpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'TYPE', get: (r) => r.spec.type },
      { header: 'EMAIL', get: (r) => r.spec.email ?? '' },
      { header: 'GROUPS', get: (r) => (r.spec.groups ?? []).join(',') },
      { header: 'POLICIES', get: (r) => policySummary(r.spec.authorization), wide: true },
      { header: 'IDENTITIES', get: (r) => (r.spec.authentication?.identities ?? []).map((id) => id.identityProvider).join(','), wide: true },
      { header: 'AGE', get: age },
    ],
    refs: (r) => [
      ...(r.spec.groups ?? []).map((name, i) => ({ kind: 'Group' as const, name, path: `spec.groups[${i}]` })),
      ...policyRefs(r.spec.authorization, 'spec.authorization'),
      ...(r.spec.authentication?.identities ?? []).map((id, i) => ({ kind: 'IdentityProvider' as const, name: id.identityProvider, path: `spec.authentication.identities[${i}].identityProvider` })),
    ],
  }),
  Group: defineKind({
    kind: 'Group', plural: 'groups', aliases: ['group', 'grp'], spec: GroupSpec, applyByDefault: true,
    columns: [{ header: 'NAME', get: (r) => r.metadata.name }, { header: 'AGE', get: age }],
    refs: (r) => policyRefs(r.spec.authorization, 'spec.authorization'),
  }),
  Policy: defineKind({
    kind: 'Policy', plural: 'policies', aliases: ['policy', 'pol'], spec: PolicySpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'RULES', get: (r) => r.spec.rules.length },
      { header: 'RULE NAMES', get: (r) => r.spec.rules.map((rule, i) => rule.name ?? `#${i}`).join(','), wide: true },
      { header: 'AGE', get: age },
    ],
  }),
  Secret: defineKind({
    kind: 'Secret', plural: 'secrets', aliases: ['secret', 'sec'], spec: SecretSpec, data: SecretData, applyByDefault: false,
    columns: [{ header: 'NAME', get: (r) => r.metadata.name }, { header: 'AGE', get: age }],
  }),
  Service: defineKind({
    kind: 'Service', plural: 'services', aliases: ['service', 'svc'], spec: ServiceSpec, applyByDefault: true,
    canonicalName: canonicalServiceName,
    listFilters: { namespace: (r, ns) => splitServiceName(r.metadata.name).namespace === ns },
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'MODE', get: (r) => r.spec.mode },
      { header: 'PUBLIC', get: (r) => Boolean(r.spec.isPublic) },
      { header: 'UPSTREAM', get: (r) => serviceUpstreamSummary(r.spec) },
      // References that do not resolve yet (e.g. upstream.user before the User exists), else managed-container health.
      { header: 'STATE', get: serviceState },
      { header: 'ANONYMOUS', get: (r) => Boolean(r.spec.isAnonymous), wide: true },
      { header: 'POLICIES', get: (r) => policySummary(r.spec.authorization), wide: true },
      { header: 'PLUGINS', get: (r) => (r.spec.config?.http?.plugins ?? []).map((p) => p.name).join(','), wide: true },
      { header: 'URL', get: (r) => `/svc/${r.metadata.name}/`, wide: true },
      { header: 'AGE', get: age },
    ],
    refs: (r) => {
      const s = r.spec;
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
  }),
  Credential: defineKind({
    kind: 'Credential', plural: 'credentials', aliases: ['credential', 'cred', 'creds'], spec: CredentialSpec, applyByDefault: true,
    issuesToken: true,
    ownedBy: 'User',
    listFilters: { user: (r, user) => r.spec.user === user },
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'TYPE', get: (r) => r.spec.type },
      { header: 'USER', get: (r) => r.spec.user },
      { header: 'EXPIRES', get: (r) => r.spec.expiresAt ?? 'never' },
      { header: 'AGE', get: age },
    ],
    refs: (r) => [{ kind: 'User', name: r.spec.user, path: 'spec.user' }],
  }),
  Session: defineKind({
    kind: 'Session', plural: 'sessions', aliases: ['session', 'sess'], spec: SessionSpec, readOnly: true, applyByDefault: false,
    listFilters: { user: (r, user) => sessionUser(r) === user },
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'USER', get: sessionUser },
      { header: 'TYPE', get: (r) => (r.status as { type?: string } | undefined)?.type ?? '' },
      { header: 'EXPIRES', get: (r) => r.spec.expiresAt ?? '' },
      { header: 'CREDENTIAL', get: (r) => (r.status as { credentialRef?: { name: string } } | undefined)?.credentialRef?.name ?? '', wide: true },
      { header: 'AGE', get: age },
    ],
  }),
  IdentityProvider: defineKind({
    kind: 'IdentityProvider', plural: 'identityproviders', aliases: ['identityprovider', 'idp', 'idps'], spec: IdentityProviderSpec, applyByDefault: true,
    columns: [
      { header: 'NAME', get: (r) => r.metadata.name },
      { header: 'TYPE', get: (r) => identityProviderType(r.spec) },
      { header: 'DISPLAY NAME', get: (r) => r.metadata.displayName ?? '' },
      // Set by the cluster when it checks the IdP (discovery, JWKS, metadata): a broken IdP shows here.
      { header: 'STATE', get: (r) => idpState(r) },
      { header: 'AGE', get: age },
    ],
    refs: (r) => secretRefs(r.spec, 'spec'),
  }),
};

/** The User a Session belongs to (set by the cluster in its status). */
function sessionUser(r: Resource): string {
  return (r.status as { userRef?: { name: string } } | undefined)?.userRef?.name ?? '';
}

function idpState(r: ResourceOf<IdentityProviderSpec>): string {
  const st = r.status as { state?: string; message?: string } | undefined;
  if (r.spec.isDisabled) return 'Disabled';
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
