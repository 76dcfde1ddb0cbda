/**
 * JSON → CEL values. cel-js represents CEL `int` as BigInt and `double` as number, so a JSON integer left
 * as a JS number is a double and `x + 1` (int literal) fails with "no such overload". Integral numbers in
 * the safe range therefore become BigInt; everything else numeric stays a double. Comparisons between
 * int and double (`a < 1000` with a = 4.5) are handled by cel-js itself.
 *
 * JSON objects become JS Maps, not plain objects: cel-js tells a map from other values by `.constructor`,
 * so a plain object with its own `constructor` key (any client can send one) would be an "unsupported type",
 * and `__proto__` would not be an ordinary key. Maps evaluate as fast as plain objects in cel-js.
 */

/** Bodies are bounded by maxRequestSize, but a 100 kB body can still nest deeper than the JS stack. */
export const MAX_DEPTH = 128;

export class ValueDepthError extends Error {
  readonly code = 'max_depth';
  constructor() {
    super(`value nested deeper than ${MAX_DEPTH} levels`);
  }
}

export type CelMap = Map<string, unknown>;

export function toCel(value: unknown, depth = 0): unknown {
  switch (typeof value) {
    case 'number':
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'string':
    case 'boolean':
    case 'bigint':
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_DEPTH) throw new ValueDepthError();
      if (Array.isArray(value)) {
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) out[i] = toCel(value[i], depth + 1);
        return out;
      }
      const out: CelMap = new Map();
      for (const key of Object.keys(value)) {
        const v = (value as Record<string, unknown>)[key];
        // An absent optional field must make has() false, not hold an undefined CEL cannot represent.
        if (v !== undefined) out.set(key, toCel(v, depth + 1));
      }
      return out;
    }
    default:
      // undefined, functions, symbols: nothing JSON would carry.
      return null;
  }
}

/** A string-to-string map (headers, query) as a CEL map, optionally lower-casing keys. */
export function stringMap(m: Record<string, string> | undefined, lowerKeys: boolean): CelMap {
  const out: CelMap = new Map();
  if (!m) return out;
  for (const key of Object.keys(m)) {
    const v = m[key];
    if (typeof v === 'string') out.set(lowerKeys ? key.toLowerCase() : key, v);
  }
  return out;
}

export function emptyMap(): CelMap {
  return new Map();
}
