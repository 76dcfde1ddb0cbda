/** CEL policy engine: compile-checks, built-in Policies, authorization decisions, dynamic config. */
export { checkExpressions } from './check.js';
export { BUILTIN_POLICIES } from './builtin.js';
export { PolicyEngine, type ConditionResult, type Decision, type RuleResult } from './engine.js';
export { compile, type Activation, type Compiled } from './cel.js';
export { compileCondition, conditionExpressions, type ConditionFn } from './condition.js';
export { buildActivation, resourceToCel } from './activation.js';
export { toCel } from './values.js';
export type { Attachment, Effect } from './rules.js';
