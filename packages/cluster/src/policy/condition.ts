import type { Condition, PathSegment } from '@octelium-ts/shared';
import { compile, errorSummary, isMissingInput, type Activation } from './cel.js';

/**
 * What `explain` wants to know besides the result: the `match` expressions that were false only because
 * the request lacks what they read (cel-js summaries such as `No such key: name`; never request values).
 */
export interface ConditionTrace { missing: string[] }

/**
 * A compiled condition: true/false, or throws when it cannot be decided (evaluation error). Missing input is
 * not an error: see compileMatch. `trace` is only passed when the caller reports why (explain).
 */
export type ConditionFn = (act: Activation, trace?: ConditionTrace) => boolean;

/** Thrown for failures that are not cel-js errors (wrong result type, malformed condition, compile error). */
export class ConditionError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ConditionError';
    this.code = code;
  }
}

const KEYS = ['match', 'all', 'any', 'none', 'not', 'matchAny'] as const;

/**
 * Conditions are objects inside stored resources, which are replaced rather than mutated on update, so the
 * compiled closure tree can be cached per condition object.
 */
const compiled = new WeakMap<object, ConditionFn>();

export function compileCondition(cond: Condition | string): ConditionFn {
  if (typeof cond === 'string') return compileMatch(cond);
  if (!cond || typeof cond !== 'object') return failing('invalid_condition', 'a condition must be a mapping');
  let fn = compiled.get(cond);
  if (!fn) {
    fn = compileUncached(cond);
    compiled.set(cond, fn);
  }
  return fn;
}

function compileUncached(cond: Condition): ConditionFn {
  const present = KEYS.filter((k) => cond[k] !== undefined);
  // Schema validation guarantees exactly one; anything else is unvalidated input and must not match.
  if (present.length !== 1) return failing('invalid_condition', 'a condition needs exactly one of match, all, any, none, not, matchAny');
  switch (present[0]) {
    case 'match':
      return compileMatch(cond.match!);
    case 'matchAny':
      return cond.matchAny ? () => true : () => false;
    case 'not': {
      // `not` negates the inner result, false-because-missing included, as Octelium's `not` does.
      const inner = compileCondition(cond.not!);
      return (act, trace) => !inner(act, trace);
    }
    case 'all':
      return allOf(list(cond.all));
    case 'any':
      return anyOf(list(cond.any));
    case 'none': {
      const any = anyOf(list(cond.none));
      return (act, trace) => !any(act, trace);
    }
  }
  return failing('invalid_condition', 'unknown condition');
}

function list(l: { of: Condition[] } | undefined): ConditionFn[] {
  return Array.isArray(l?.of) ? l.of.map((c) => compileCondition(c)) : [failing('invalid_condition', '`of` must be a list')];
}

/**
 * Like CEL's own `&&`: the first false decides, wherever it is; an error only propagates when no branch
 * is false (so `all` of [error, false] is false, the same answer whatever the erroring branch would say).
 */
function allOf(fns: ConditionFn[]): ConditionFn {
  return (act, trace) => {
    let error: unknown;
    for (const f of fns) {
      try {
        if (!f(act, trace)) return false;
      } catch (err) {
        error ??= err;
      }
    }
    if (error !== undefined) throw error;
    return true;
  };
}

/** Like CEL's `||`: the first true decides; an error propagates only when no branch is true. */
function anyOf(fns: ConditionFn[]): ConditionFn {
  return (act, trace) => {
    let error: unknown;
    for (const f of fns) {
      try {
        if (f(act, trace)) return true;
      } catch (err) {
        error ??= err;
      }
    }
    if (error !== undefined) throw error;
    return false;
  };
}

function compileMatch(expr: string): ConditionFn {
  const c = compile(expr);
  if (!c.ok) {
    // Reached only when a resource was stored without the apply-time check; it fails as an evaluation error.
    const message = c.message;
    return failing('compile_error', message);
  }
  const program = c.program;
  return (act, trace) => {
    let v: unknown;
    try {
      v = program(act);
    } catch (err) {
      // Octelium's rule (see cel.ts isMissingInput): reading what the request does not have makes this
      // whole expression false, so `bodyMap.params.name == "x"` does not match an `initialize` without
      // params, for DENY and ALLOW rules alike. Only other errors (type errors …) fail closed.
      if (!isMissingInput(err)) throw err;
      trace?.missing.push(errorSummary(err));
      return false;
    }
    if (v === true) return true;
    if (v === false) return false;
    throw new ConditionError('not_bool', `condition evaluated to ${describe(v)}, not bool`);
  };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'double';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'map' : typeof v;
}

function failing(code: string, message: string): ConditionFn {
  return () => {
    throw new ConditionError(code, message);
  };
}

/** Every CEL string inside a condition with its path relative to the condition (for apply-time checks). */
export function conditionExpressions(cond: unknown, path: PathSegment[] = [], out: Array<{ path: PathSegment[]; expr: string }> = []) {
  if (typeof cond === 'string') {
    out.push({ path, expr: cond });
    return out;
  }
  if (!cond || typeof cond !== 'object') return out;
  const c = cond as Record<string, unknown>;
  if (typeof c.match === 'string') out.push({ path: [...path, 'match'], expr: c.match });
  for (const key of ['all', 'any', 'none'] as const) {
    const of = (c[key] as { of?: unknown } | undefined)?.of;
    if (Array.isArray(of)) of.forEach((sub, i) => conditionExpressions(sub, [...path, key, 'of', i], out));
  }
  if (c.not !== undefined) conditionExpressions(c.not, [...path, 'not'], out);
  return out;
}
