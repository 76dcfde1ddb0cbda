import { isObject, type JsonRpcMessage } from './jsonrpc.js';
import type { ListMethod } from './sessions.js';
import type { Primitive, Visibility } from './visibility.js';

export const LIST_METHODS = new Set<string>(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']);

/** Which array of a list result holds the entries, what kind they are, and which field names them. */
const SHAPES: Partial<Record<ListMethod, { field: string; kind: Primitive; key: string }>> = {
  'tools/list': { field: 'tools', kind: 'tool', key: 'name' },
  'prompts/list': { field: 'prompts', kind: 'prompt', key: 'name' },
  'resources/list': { field: 'resources', kind: 'resource', key: 'uri' },
  // resources/templates/list is passed through: a URI template names no single resource a policy could be asked about.
};

/**
 * Drops the entries the caller may not use from one list result, in place (mcp-spec.md §5.4): `nextCursor`
 * untouched (pages may shrink, even to empty); `cacheScope` set to "private" when the answer depends on the
 * caller, because a "public" result may be shared across users by clients and caches. Returns true if changed.
 */
export function filterListResult(method: ListMethod, result: Record<string, unknown>, vis: Visibility, modern: boolean): boolean {
  const shape = SHAPES[method];
  if (!shape || !Array.isArray(result[shape.field])) return false;
  const entries = result[shape.field] as unknown[];
  const kept = entries.filter((e) => !isObject(e) || typeof e[shape.key] !== 'string' || vis.visible(shape.kind, e[shape.key] as string));
  let changed = kept.length !== entries.length;
  if (changed) result[shape.field] = kept;
  if (vis.callerDependent && (modern || 'cacheScope' in result) && result.cacheScope !== 'private') {
    result.cacheScope = 'private';
    changed = true;
  }
  return changed;
}

/**
 * Rewrites the list responses among JSON-RPC messages (one message or a 2025-03-26 batch array). `methodOf`
 * tells which response ids answer a tracked list request. Returns the rewritten value, or undefined if unchanged.
 */
export function rewriteMessages(value: unknown, methodOf: (id: unknown) => ListMethod | undefined, vis: Visibility, modern: boolean): unknown {
  const one = (m: unknown): boolean => {
    const msg = m as JsonRpcMessage;
    if (!isObject(msg) || !isObject(msg.result) || msg.id === undefined) return false;
    const method = methodOf(msg.id);
    return method ? filterListResult(method, msg.result, vis, modern) : false;
  };
  const changed = Array.isArray(value) ? value.map(one).some(Boolean) : one(value);
  return changed ? value : undefined;
}
