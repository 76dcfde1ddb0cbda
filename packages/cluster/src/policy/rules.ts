import type { Authorization, KindName, Resource, Rule } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import { builtinPolicy } from './builtin.js';
import { compileCondition, type ConditionFn } from './condition.js';
import { warnOnce } from './log.js';

export type Effect = 'ALLOW' | 'DENY';
export interface Attachment { kind: KindName; name: string }

/** A rule compiled once per owning resource object (stored resources are replaced, never mutated). */
export interface CompiledRule {
  /** `policy/allow-read` or `service/my-mcp inline[0]`. */
  source: string;
  /** The rule's name, or `rules[i]` when it has none. */
  label: string;
  effect: Effect;
  priority: number;
  condition: ConditionFn;
  /** Named Policy, or the inline policy's name (its own, or `inline[i]`). */
  policy?: string;
  inlinePolicy?: string;
}

/** A rule as it applies to one request: the compiled rule plus where it was attached. */
export interface EffectiveRule { rule: CompiledRule; attachedTo: Attachment }

function compileRules(rules: readonly Rule[] | undefined, base: Omit<CompiledRule, 'label' | 'effect' | 'priority' | 'condition'>): CompiledRule[] {
  if (!Array.isArray(rules)) return [];
  return rules.map((r, i) => ({
    ...base,
    label: r.name || `rules[${i}]`,
    // Anything but ALLOW is treated as DENY: an unvalidated typo must not turn into an allow.
    effect: r.effect === 'ALLOW' ? 'ALLOW' : 'DENY',
    priority: typeof r.priority === 'number' ? r.priority : 0,
    condition: compileCondition(r.condition),
  }));
}

const policyRules = new WeakMap<Resource, CompiledRule[]>();
function rulesOfPolicy(policy: Resource): CompiledRule[] {
  let rules = policyRules.get(policy);
  if (!rules) {
    const name = policy.metadata.name;
    rules = compileRules((policy.spec as { rules?: Rule[] } | undefined)?.rules, { source: `policy/${name}`, policy: name });
    policyRules.set(policy, rules);
  }
  return rules;
}

const inlineRules = new WeakMap<Resource, CompiledRule[]>();
function inlineRulesOf(holder: Resource, auth: Authorization | undefined): CompiledRule[] {
  let rules = inlineRules.get(holder);
  if (!rules) {
    rules = [];
    const owner = `${holder.kind.toLowerCase()}/${holder.metadata.name}`;
    (auth?.inlinePolicies ?? []).forEach((p, i) => {
      const name = p.name || `inline[${i}]`;
      rules!.push(...compileRules(p.spec?.rules, { source: `${owner} ${p.name ? `inline/${p.name}` : `inline[${i}]`}`, inlinePolicy: name }));
    });
    inlineRules.set(holder, rules);
  }
  return rules;
}

function authorizationOf(r: Resource): Authorization | undefined {
  return (r.spec as { authorization?: Authorization } | undefined)?.authorization;
}

/**
 * Collects the rules that apply to a request, Octelium-style: from the Session, the User, the User's
 * Groups, the Service and its Namespace — each one's named Policies and inline policies. A named Policy
 * attached at several levels is evaluated once. Sorted DENY first, then by priority (higher first); the
 * sort is stable so equal priorities keep the collection order above.
 */
export function collectRules(store: ResourceStore, facts: RequestFacts, namespace: Resource | undefined): EffectiveRule[] {
  const out: EffectiveRule[] = [];
  const seen = new Set<string>();
  addHolder(store, facts.session, out, seen);
  addHolder(store, facts.user, out, seen);
  for (const g of (facts.user?.spec as { groups?: string[] } | undefined)?.groups ?? []) {
    const group = store.get('Group', g);
    if (group) addHolder(store, group, out, seen);
    else warnOnce(`missing-group:${g}`, `policy: User "${facts.user!.metadata.name}" is in Group "${g}", which does not exist`);
  }
  addHolder(store, facts.service, out, seen);
  addHolder(store, namespace, out, seen);
  if (out.length > 1) out.sort(byEffectThenPriority);
  return out;
}

function addHolder(store: ResourceStore, holder: Resource | undefined, out: EffectiveRule[], seenPolicies: Set<string>): void {
  if (!holder) return;
  const attachedTo: Attachment = { kind: holder.kind, name: holder.metadata.name };
  const auth = authorizationOf(holder);
  for (const name of auth?.policies ?? []) {
    if (seenPolicies.has(name)) continue;
    seenPolicies.add(name);
    const policy = store.get('Policy', name) ?? builtinPolicy(name);
    if (!policy) {
      warnOnce(`missing-policy:${name}`, `policy: ${attachedTo.kind} "${attachedTo.name}" references Policy "${name}", which does not exist; its rules are ignored`);
      continue;
    }
    for (const rule of rulesOfPolicy(policy)) out.push({ rule, attachedTo });
  }
  for (const rule of inlineRulesOf(holder, auth)) out.push({ rule, attachedTo });
}

function byEffectThenPriority(a: EffectiveRule, b: EffectiveRule): number {
  if (a.rule.effect !== b.rule.effect) return a.rule.effect === 'DENY' ? -1 : 1;
  return b.rule.priority - a.rule.priority;
}

/**
 * The collected rule list depends on the Service, User, Session and Namespace objects (keys, by identity:
 * the store replaces a resource on update) and on Policies and Groups looked up by name (covered by the
 * generation, which the engine bumps on every store change). Entries are weakly held.
 */
export class RuleCache {
  readonly #byService = new WeakMap<Resource, WeakMap<object, WeakMap<object, { generation: number; namespace: Resource | undefined; rules: EffectiveRule[] }>>>();
  generation = 0;

  get(store: ResourceStore, facts: RequestFacts, namespace: Resource | undefined): EffectiveRule[] {
    const service = facts.service;
    if (!service) return collectRules(store, facts, namespace);
    let byUser = this.#byService.get(service);
    if (!byUser) this.#byService.set(service, (byUser = new WeakMap()));
    const userKey = facts.user ?? NONE;
    let bySession = byUser.get(userKey);
    if (!bySession) byUser.set(userKey, (bySession = new WeakMap()));
    const sessionKey = facts.session ?? NONE;
    const hit = bySession.get(sessionKey);
    if (hit && hit.generation === this.generation && hit.namespace === namespace) return hit.rules;
    const rules = collectRules(store, facts, namespace);
    bySession.set(sessionKey, { generation: this.generation, namespace, rules });
    return rules;
  }
}

/** WeakMap key standing for "no User" / "no Session" (anonymous requests). */
const NONE = {};
