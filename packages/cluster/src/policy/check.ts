import type { Issue, PathSegment, Resource } from '@octelium-ts/shared';
import { compile } from './cel.js';
import { conditionExpressions } from './condition.js';

/** Where a condition sits and how to name its owner in a message, e.g. `rule 0 "r1"`. */
interface Site { path: PathSegment[]; label: string; condition: unknown }

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const named = (what: string, i: number, item: Obj | undefined, key = 'name') =>
  typeof item?.[key] === 'string' && item[key] ? `${what} ${i} "${item[key] as string}"` : `${what} ${i}`;

function ruleSites(rules: unknown, path: PathSegment[], prefix: string, out: Site[]): void {
  arr(rules).forEach((r, i) => {
    const rule = obj(r);
    if (rule && 'condition' in rule) out.push({ path: [...path, i, 'condition'], label: prefix + named('rule', i, rule), condition: rule.condition });
  });
}

function authorizationSites(auth: unknown, path: PathSegment[], out: Site[]): void {
  arr(obj(auth)?.inlinePolicies).forEach((p, i) => {
    const inline = obj(p);
    ruleSites(obj(inline?.spec)?.rules, [...path, 'inlinePolicies', i, 'spec', 'rules'], `${named('inline policy', i, inline)}, `, out);
  });
}

function pluginSites(http: unknown, path: PathSegment[], prefix: string, out: Site[]): void {
  arr(obj(http)?.plugins).forEach((p, i) => {
    const plugin = obj(p);
    if (plugin && plugin.condition !== undefined) out.push({ path: [...path, 'plugins', i, 'condition'], label: prefix + named('plugin', i, plugin), condition: plugin.condition });
  });
}

/** Every condition in a resource, by kind (the list in the API contract of checkExpressions). */
function sites(resource: Resource): Site[] {
  const spec = obj(resource.spec);
  const out: Site[] = [];
  if (!spec) return out;
  switch (resource.kind) {
    case 'Policy':
      ruleSites(spec.rules, ['spec', 'rules'], '', out);
      break;
    case 'Service': {
      authorizationSites(spec.authorization, ['spec', 'authorization'], out);
      pluginSites(obj(spec.config)?.http, ['spec', 'config', 'http'], '', out);
      const dyn = obj(spec.dynamicConfig);
      arr(dyn?.rules).forEach((r, i) => {
        const rule = obj(r);
        if (rule && 'condition' in rule) out.push({ path: ['spec', 'dynamicConfig', 'rules', i, 'condition'], label: `dynamicConfig ${named('rule', i, rule, 'configName')}`, condition: rule.condition });
      });
      arr(dyn?.configs).forEach((c, i) => pluginSites(obj(c)?.http, ['spec', 'dynamicConfig', 'configs', i, 'http'], `dynamicConfig ${named('config', i, obj(c))}, `, out));
      break;
    }
    default:
      // User, Group, Namespace (and Session/Credential, which carry the same Authorization shape).
      authorizationSites(spec.authorization, ['spec', 'authorization'], out);
  }
  return out;
}

/**
 * Compile-checks every CEL expression inside a resource so that a bad policy is rejected at apply time
 * instead of silently denying (or failing to deny) requests later. Each issue's path points at the
 * expression itself, e.g. `spec.rules[0].condition.all.of[1].match`; the message names the rule or plugin
 * and carries cel-js's caret excerpt. Compiled programs land in the shared cache, ready for the gateway.
 */
export function checkExpressions(resource: Resource): Issue[] {
  const issues: Issue[] = [];
  const owner = `${resource.kind} "${resource.metadata?.name ?? ''}"`;
  for (const site of sites(resource)) {
    for (const { path, expr } of conditionExpressions(site.condition)) {
      const c = compile(expr);
      if (!c.ok) issues.push({ path: [...site.path, ...path], message: `${owner}, ${site.label}: invalid CEL expression: ${c.message}` });
    }
  }
  return issues;
}
