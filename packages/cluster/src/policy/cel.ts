import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import { BoundedMap } from '@octelium-ts/shared';

/**
 * One CEL environment for every policy expression: the only variable is `ctx` (a map, so field access on
 * it is dynamically typed and checked at evaluation). Mixed list literals such as `[1, 2.5]` are allowed,
 * as in cel-go's default environment that Octelium uses.
 */
const env = new Environment({ homogeneousAggregateLiterals: false }).registerVariable('ctx', 'map');

/** What a compiled program is called with: `{ctx}` built once per request (see activation.ts). */
export interface Activation { ctx: unknown }

export type Compiled =
  | { ok: true; program: ParseResult }
  /** `message` carries cel-js's caret excerpt of the expression. */
  | { ok: false; message: string };

/** Expressions come from stored resources, so the set is small; the cap only bounds churn (re-applies). */
const MAX_CACHED = 10_000;
const cache = new BoundedMap<string, Compiled>(MAX_CACHED);

/**
 * Parses and type-checks `expr` once; later calls with the same string return the cached result, so the
 * apply-time check and the gateway share the work. A program whose static type is neither bool nor dyn
 * (e.g. `"a"` or `1 + 2`) can never match, so it is rejected here rather than denied at request time.
 */
export function compile(expr: string): Compiled {
  let c = cache.get(expr);
  if (c) return c;
  c = compileUncached(expr);
  cache.set(expr, c);
  return c;
}

function compileUncached(expr: string): Compiled {
  let program: ParseResult;
  try {
    program = env.parse(expr);
  } catch (err) {
    return { ok: false, message: errorMessage(err) };
  }
  let checked;
  try {
    checked = program.check();
  } catch (err) {
    return { ok: false, message: errorMessage(err) };
  }
  if (!checked.valid) return { ok: false, message: errorMessage(checked.error) };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, message: `a condition must evaluate to bool, this expression is ${checked.type}\n\n${caret(expr)}` };
  }
  return { ok: true, program };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Same layout as cel-js's own excerpts, pointing at the start of the expression. */
function caret(expr: string): string {
  const line = expr.split('\n')[0];
  return `>    1 | ${line}\n         ^`;
}

/** Short, single-line form of an evaluation error (cel-js `summary` drops the excerpt). */
export function errorSummary(err: unknown): string {
  if (err && typeof err === 'object' && typeof (err as { summary?: unknown }).summary === 'string') return (err as { summary: string }).summary;
  return errorMessage(err).split('\n')[0];
}

/**
 * Errors that only say "the input has no such thing": a missing map key or field (also a select on null,
 * which cel-js reports as no_such_key) and a list or bytes index out of range. Octelium treats exactly these
 * as "the expression is false" and every other evaluation error as an error (octelium/octelium
 * cluster/common/celengine/celengine.go, isCELMissingInputErr: "no such key", "no such field", null selects,
 * "index out of range"); cel-js gives them stable codes, so no message matching is needed here.
 */
const MISSING_INPUT_CODES = new Set(['no_such_key', 'index_out_of_bounds', 'index_out_of_range']);

export function isMissingInput(err: unknown): boolean {
  return MISSING_INPUT_CODES.has(errorCode(err));
}

/** Stable error class for logs: cel-js error codes never contain request data, unlike messages. */
export function errorCode(err: unknown): string {
  const code = err && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}
