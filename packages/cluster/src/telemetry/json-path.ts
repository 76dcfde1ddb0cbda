import { BoundedMap } from '@octelium-ts/shared';

/**
 * Redaction paths: dot-separated keys into a bodyMap, e.g. `params.arguments.password`.
 *   `*`  any one key or array index     `**` any depth (zero or more keys)     `0` an array index
 * A key segment applied to an array applies to each element, so a path written for one JSON-RPC
 * message also covers a batch. Matching values become "[REDACTED]".
 */
export const REDACTED = '[REDACTED]';

// Paths come from config: the bound only matters in a pathological case.
const compiled = new BoundedMap<string, string[]>(1000);

export function compilePath(path: string): string[] {
  let segs = compiled.get(path);
  if (!segs) {
    segs = path.replace(/^\$\.?/, '').split('.').filter(Boolean);
    compiled.set(path, segs);
  }
  return segs;
}

type Json = unknown;

/** Calls `fn` on each child; returns `node` itself when nothing changed (copy on write, input untouched). */
function mapChildren(node: Json, fn: (child: Json) => Json): Json {
  if (Array.isArray(node)) {
    let out: Json[] | undefined;
    for (let i = 0; i < node.length; i++) {
      const v = fn(node[i]);
      if (v !== node[i]) (out ??= node.slice())[i] = v;
    }
    return out ?? node;
  }
  if (node === null || typeof node !== 'object') return node;
  let out: Record<string, Json> | undefined;
  for (const [k, child] of Object.entries(node)) {
    const v = fn(child);
    if (v !== child) (out ??= { ...(node as Record<string, Json>) })[k] = v;
  }
  return out ?? node;
}

function apply(node: Json, segs: string[], i: number, removed: Json[]): Json {
  if (i === segs.length) {
    if (node !== REDACTED) removed.push(node);
    return REDACTED;
  }
  if (node === null || typeof node !== 'object') return node;
  const seg = segs[i];
  if (seg === '**') return mapChildren(apply(node, segs, i + 1, removed), (c) => apply(c, segs, i, removed));
  if (seg === '*') return mapChildren(node, (c) => apply(c, segs, i + 1, removed));
  if (Array.isArray(node)) {
    if (/^\d+$/.test(seg)) {
      const idx = Number(seg);
      if (idx >= node.length) return node;
      const v = apply(node[idx], segs, i + 1, removed);
      if (v === node[idx]) return node;
      const out = node.slice();
      out[idx] = v;
      return out;
    }
    return mapChildren(node, (c) => apply(c, segs, i, removed));
  }
  const obj = node as Record<string, Json>;
  if (!Object.prototype.hasOwnProperty.call(obj, seg)) return node;
  const v = apply(obj[seg], segs, i + 1, removed);
  return v === obj[seg] ? node : { ...obj, [seg]: v };
}

/**
 * `value` with every match of every path replaced by "[REDACTED]"; the same object when nothing matched.
 * The values taken out are pushed to `removed` (so a caller can scrub them where they reappear).
 */
export function redactPaths(value: Json, paths: readonly string[], removed: Json[] = []): Json {
  let out = value;
  for (const p of paths) {
    const segs = compilePath(p);
    if (segs.length) out = apply(out, segs, 0, removed);
  }
  return out;
}
