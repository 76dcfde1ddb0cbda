import { splitServiceName, type Condition, type Resource, type ServiceSpec } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import { buildActivation, type ActivationResult } from './activation.js';
import { errorCode, errorSummary } from './cel.js';
import { compileCondition, type ConditionTrace } from './condition.js';
import { warnOnce } from './log.js';
import { RecentCache } from './recent-cache.js';
import { RuleCache, type Attachment, type Effect, type EffectiveRule } from './rules.js';

/** One rule's outcome, as `explain` reports it. */
export interface RuleResult {
  /** `policy/allow-read` or `service/my-mcp inline[0]`. */
  source: string;
  /** The rule's name, or `rules[i]`. */
  rule: string;
  effect: Effect;
  /** For a DENY rule that failed to evaluate this is true (fail closed), with `error` set. */
  matched: boolean;
  /**
   * MATCHED, NOT_MATCHED, or ERROR: the condition could not be evaluated (`error` says why; a DENY rule then
   * counts as matched, an ALLOW rule as not matched).
   */
  outcome: 'MATCHED' | 'NOT_MATCHED' | 'ERROR';
  error?: string;
  /**
   * Expressions that were false only because the request lacks what they read (`No such key: name`): the
   * usual reason a rule written for `tools/call` does not match `initialize`.
   */
  missing?: string[];
  /** The resource the rule's policy is attached to (for a named Policy: the first level it was found at). */
  attachedTo: Attachment;
  priority: number;
}

export interface Decision {
  allowed: boolean;
  reason: {
    type: 'POLICY_MATCH' | 'NO_POLICY_MATCH' | 'NO_POLICY_ATTACHED';
    /**
     * For POLICY_MATCH: `{policyMatch: {policy: {name, attachedTo}} | {inlinePolicy: {name, attachedTo}},
     * rule, effect, source}` plus `evaluationError` (an error code, never request data) when a DENY rule
     * matched because it could not be evaluated.
     */
    details?: Record<string, unknown>;
  };
}

/** `error` is set when the condition could not be evaluated (code: stable, message: may quote the expression). */
export interface ConditionResult { matched: boolean; error?: { code: string; message: string } }

interface RequestState { namespace: Resource | undefined; activation: ActivationResult }

/**
 * Octelium's authorization semantics over CEL (design.md §5, octelium-model.md "Policy"):
 * any matching DENY denies, else any matching ALLOW allows, else the request is denied (NO_POLICY_MATCH).
 * An expression that reads what the request does not have (no such key, index out of range) is false, as
 * in Octelium; a rule that cannot be evaluated for any other reason is a non-match for ALLOW and a match
 * for DENY, so errors fail closed.
 *
 * RequestFacts are treated as immutable once evaluated: the CEL activation is built once per facts object
 * (memoized for the last few requests), so build a new RequestFacts when the request changes (e.g. after
 * a plugin rewrote it).
 */
export class PolicyEngine {
  readonly #store: ResourceStore;
  readonly #requests = new RecentCache<RequestFacts, RequestState>(4);
  readonly #rules = new RuleCache();
  readonly #unwatch: () => void;

  readonly #allowWhenNoRules: boolean;

  /**
   * `allowWhenNoRules`: when not a single rule applies to a request (no Policy attached anywhere along
   * Session, User, Groups, Service, Namespace), allow it instead of NO_POLICY_MATCH — the cluster's
   * default so that a freshly applied Service works for authenticated users; attach `deny-all` to a
   * Namespace for strict default-deny.
   */
  constructor(store: ResourceStore, opts: { allowWhenNoRules?: boolean } = {}) {
    this.#store = store;
    this.#allowWhenNoRules = opts.allowWhenNoRules ?? false;
    // Any write may add, change or remove a Policy or Group that cached rule lists were built from.
    this.#unwatch = store.watch(() => {
      this.#rules.generation++;
    });
  }

  /** Stops following store changes (only needed when the engine is dropped before its store). */
  close(): void {
    this.#unwatch();
  }

  authorize(facts: RequestFacts): Decision {
    return this.#decide(facts, undefined);
  }

  /** The same decision as `authorize`, plus every applicable rule's result in evaluation order. */
  explain(facts: RequestFacts): Decision & { rules: RuleResult[] } {
    const rules: RuleResult[] = [];
    const decision = this.#decide(facts, rules);
    return { ...decision, rules };
  }

  /** Generic condition evaluation: true only when the condition evaluates to true (errors are false). */
  evaluate(cond: Condition, facts: RequestFacts): boolean {
    return this.condition(cond, facts).matched;
  }

  /**
   * A condition's result with the evaluation error, if any, so a caller can fail closed (plugin conditions).
   * Missing input is not an error: the expression reading it is false, as in Octelium.
   */
  condition(cond: Condition, facts: RequestFacts): ConditionResult {
    const { activation } = this.#state(facts);
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // see STACKLESS below
    try {
      if (!activation.ok) throw activation.error;
      return { matched: compileCondition(cond)(activation.activation) };
    } catch (err) {
      return { matched: false, error: { code: errorCode(err), message: errorSummary(err) } };
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  /**
   * Service dynamicConfig: the name of the config picked by the first matching rule, or undefined (use
   * the Service's own config). A rule naming a config that does not exist is skipped (and logged once).
   */
  selectDynamicConfig(service: Resource, facts: RequestFacts): string | undefined {
    const dyn = (service.spec as ServiceSpec | undefined)?.dynamicConfig;
    if (!dyn?.rules?.length) return undefined;
    for (const rule of dyn.rules) {
      if (!this.evaluate(rule.condition, facts)) continue;
      if (dyn.configs?.some((c) => c.name === rule.configName)) return rule.configName;
      warnOnce(`missing-config:${service.metadata.name}:${rule.configName}`, `policy: Service "${service.metadata.name}" dynamicConfig rule picks config "${rule.configName}", which is not in dynamicConfig.configs; rule skipped`);
    }
    return undefined;
  }

  #state(facts: RequestFacts): RequestState {
    let s = this.#requests.get(facts);
    if (!s) {
      const namespace = facts.namespace ?? this.#namespaceOf(facts.service);
      s = { namespace, activation: buildActivation(facts, namespace) };
      this.#requests.set(facts, s);
    }
    return s;
  }

  #namespaceOf(service: Resource | undefined): Resource | undefined {
    return service ? this.#store.get('Namespace', splitServiceName(service.metadata.name).namespace) : undefined;
  }

  #decide(facts: RequestFacts, report: RuleResult[] | undefined): Decision {
    const { namespace, activation } = this.#state(facts);
    const rules = this.#rules.get(this.#store, facts, namespace);
    if (rules.length === 0 && this.#allowWhenNoRules) return { allowed: true, reason: { type: 'NO_POLICY_ATTACHED' } };
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // see STACKLESS below
    try {
      // Rules are sorted DENY first, then by priority, so the first match is the deciding rule.
      let decidedBy: EffectiveRule | undefined;
      let decidingError: unknown;
      for (const entry of rules) {
        const rule = entry.rule;
        let matched: boolean;
        let error: unknown;
        const trace: ConditionTrace | undefined = report ? { missing: [] } : undefined;
        try {
          if (!activation.ok) throw activation.error;
          matched = rule.condition(activation.activation, trace);
        } catch (err) {
          error = err;
          matched = rule.effect === 'DENY'; // fail closed
          logEvalError(entry, err);
        }
        if (report) {
          report.push({
            source: rule.source,
            rule: rule.label,
            effect: rule.effect,
            matched,
            outcome: error !== undefined ? 'ERROR' : matched ? 'MATCHED' : 'NOT_MATCHED',
            ...(error === undefined ? {} : { error: errorSummary(error) }),
            ...(trace?.missing.length ? { missing: trace.missing } : {}),
            attachedTo: entry.attachedTo,
            priority: rule.priority,
          });
        }
        if (matched && !decidedBy) {
          decidedBy = entry;
          decidingError = error;
          if (!report) break;
        }
      }
      if (!decidedBy) return NO_POLICY_MATCH;
      if (decidingError !== undefined) return decisionOf(decidedBy, errorCode(decidingError));
      let decision = decisions.get(decidedBy);
      if (!decision) decisions.set(decidedBy, (decision = decisionOf(decidedBy, undefined)));
      return decision;
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * The decision a rule makes when it matches without an error is the same object for every request it decides
 * (frozen: the AccessLog and MCP read it, nothing may change it), so deciding allocates nothing. Kept per
 * EffectiveRule, which the rule cache rebuilds when Policies change.
 */
const decisions = new WeakMap<EffectiveRule, Decision>();
const NO_POLICY_MATCH: Decision = deepFreeze({ allowed: false, reason: { type: 'NO_POLICY_MATCH' } });

function decisionOf({ rule, attachedTo }: EffectiveRule, evaluationError: string | undefined): Decision {
  const policyMatch = rule.policy ? { policy: { name: rule.policy, attachedTo } } : { inlinePolicy: { name: rule.inlinePolicy, attachedTo } };
  const details: Record<string, unknown> = { policyMatch, rule: rule.label, effect: rule.effect, source: rule.source };
  if (evaluationError !== undefined) details.evaluationError = evaluationError;
  const decision: Decision = { allowed: rule.effect === 'ALLOW', reason: { type: 'POLICY_MATCH', details } };
  return evaluationError === undefined ? deepFreeze(decision) : decision;
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const c of Object.values(v)) deepFreeze(c);
  }
  return v;
}

/** The code and the rule's identity only: messages can quote request data (header values, body fields). */
function logEvalError({ rule }: EffectiveRule, error: unknown): void {
  const code = errorCode(error);
  warnOnce(
    `eval:${rule.source}:${rule.label}:${code}`,
    `policy: ${rule.source} rule "${rule.label}" could not be evaluated (${code}); treated as ${rule.effect === 'DENY' ? 'a match (DENY fails closed)' : 'a non-match'}`,
  );
}

/*
 * STACKLESS: a missing field raises a CEL error inside cel-js on every request that lacks it; capturing a JS stack
 * trace for each is most of that cost (~5 of ~6 µs), and the stack is never used (errors are reported by
 * rule, not by stack). Evaluation is synchronous, so the limit is restored before anything else runs.
 */
