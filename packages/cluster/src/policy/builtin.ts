import { API_VERSION, type PolicySpec, type Resource } from '@octelium-ts/shared';

function builtin(name: string, effect: 'ALLOW' | 'DENY', description: string): Resource<PolicySpec> {
  return deepFreeze({
    apiVersion: API_VERSION,
    kind: 'Policy',
    metadata: { name, isSystem: true, description },
    spec: { rules: [{ name, effect, condition: { match: 'true' } }] },
  });
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/**
 * Octelium's built-in Policies, created by bootstrap. Frozen because they are shared module constants;
 * the engine also falls back to them when a reference to one cannot be found in the store.
 */
export const BUILTIN_POLICIES: Resource[] = [
  builtin('allow-all', 'ALLOW', 'Built-in: allows every request'),
  builtin('deny-all', 'DENY', 'Built-in: denies every request'),
];

export function builtinPolicy(name: string): Resource | undefined {
  return BUILTIN_POLICIES.find((p) => p.metadata.name === name);
}
