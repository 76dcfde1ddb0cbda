import { LuaType, typeName, type LuaApi } from './lua-api.js';
import type { CallState } from './call-state.js';

/**
 * JSON <-> Lua tables, done in JS over the C API:
 * - JSON null becomes `json.null` (a NULL light userdata) so null members survive a decode/encode round trip;
 * - arrays become sequences remembered in a weak set (also filled by `json.array(t)`), so `[]` encodes back as `[]`;
 * - integers stay Lua integers and floats stay floats (`1` stays `1`, `1.5` stays `1.5`);
 * - decoded objects re-encode in their original key order (new keys follow, sorted).
 */

const MAX_DEPTH = 200;

export function pushJsonValue(api: LuaApi, L: number, value: unknown, call: CallState, depth = 0): void {
  const m = api.m;
  switch (typeof value) {
    case 'string':
      api.pushString(L, value);
      return;
    case 'number':
      if (Number.isSafeInteger(value)) m._lua_pushinteger(L, BigInt(value));
      else m._lua_pushnumber(L, value);
      return;
    case 'boolean':
      m._lua_pushboolean(L, value ? 1 : 0);
      return;
    case 'object':
      break;
    default:
      m._lua_pushnil(L);
      return;
  }
  if (value === null) {
    m._lua_pushlightuserdata(L, 0);
    return;
  }
  if (depth >= MAX_DEPTH) throw new Error(`JSON nested deeper than ${MAX_DEPTH} levels`);
  if (!m._lua_checkstack(L, 4)) throw new Error('Lua stack overflow');
  if (Array.isArray(value)) {
    m._lua_createtable(L, value.length, 0);
    for (let i = 0; i < value.length; i++) {
      pushJsonValue(api, L, value[i], call, depth + 1);
      m._lua_rawseti(L, -2, BigInt(i + 1));
    }
    // Remember it was an array (weak-keyed set) so that `[]` does not come back as `{}`.
    api.pushRef(L, call.refs.arrays);
    m._lua_pushvalue(L, -2);
    m._lua_pushboolean(L, 1);
    m._lua_rawset(L, -3);
    api.pop(L, 1);
    return;
  }
  const keys = Object.keys(value);
  m._lua_createtable(L, 0, keys.length);
  for (const k of keys) {
    api.pushString(L, k);
    pushJsonValue(api, L, (value as Record<string, unknown>)[k], call, depth + 1);
    m._lua_rawset(L, -3);
  }
  if (keys.length > 1) call.keyOrder.set(m._lua_topointer(L, -1), keys);
}

/** Encodes the Lua value at `idx`; throws Error with a script-facing message for values JSON cannot hold. */
export function encodeLuaValue(api: LuaApi, L: number, idx: number, call: CallState): string {
  return encodeAt(api, L, api.m._lua_absindex(L, idx), call, 0, new Set());
}

function encodeAt(api: LuaApi, L: number, idx: number, call: CallState, depth: number, seen: Set<number>): string {
  const m = api.m;
  const t = m._lua_type(L, idx);
  switch (t) {
    case LuaType.Nil:
      return 'null';
    case LuaType.Boolean:
      return m._lua_toboolean(L, idx) ? 'true' : 'false';
    case LuaType.Number: {
      if (m._lua_isinteger(L, idx)) return m._lua_tointegerx(L, idx, 0).toString();
      const n = m._lua_tonumberx(L, idx, 0);
      if (!Number.isFinite(n)) throw new Error(`cannot encode ${n} as JSON`);
      return JSON.stringify(n);
    }
    case LuaType.String:
      return JSON.stringify(api.readString(L, idx));
    case LuaType.LightUserdata:
      if (m._lua_touserdata(L, idx) === 0) return 'null';
      break;
    case LuaType.Table:
      return encodeTable(api, L, idx, call, depth, seen);
  }
  throw new Error(`cannot encode a ${typeName(t)} value as JSON`);
}

function encodeTable(api: LuaApi, L: number, idx: number, call: CallState, depth: number, seen: Set<number>): string {
  const m = api.m;
  if (depth >= MAX_DEPTH) throw new Error(`table nested deeper than ${MAX_DEPTH} levels`);
  const ptr = m._lua_topointer(L, idx);
  if (seen.has(ptr)) throw new Error('cannot encode a table that contains itself');
  if (!m._lua_checkstack(L, 4)) throw new Error('Lua stack overflow');

  if (m._lua_getmetatable(L, idx)) {
    api.pushRef(L, call.refs.lazyMt);
    const lazy = m._lua_rawequal(L, -1, -2) === 1;
    api.pop(L, 2);
    if (lazy) return encodeLazy(api, L, idx, call);
  }
  api.pushRef(L, call.refs.arrays);
  m._lua_pushvalue(L, idx);
  m._lua_rawget(L, -2);
  const markedArray = m._lua_toboolean(L, -1) === 1;
  api.pop(L, 2);

  seen.add(ptr);
  const intKeys: number[] = [];
  const intVals: string[] = [];
  const strKeys: string[] = [];
  const strVals = new Map<string, string>();
  m._lua_pushnil(L);
  while (m._lua_next(L, idx)) {
    const kt = m._lua_type(L, -2);
    const valueIdx = m._lua_gettop(L);
    if (kt === LuaType.String) {
      // lua_tolstring on a string key does not modify it, so lua_next stays valid.
      const k = api.readString(L, -2)!;
      strKeys.push(k);
      strVals.set(k, encodeAt(api, L, valueIdx, call, depth + 1, seen));
    } else if (kt === LuaType.Number && m._lua_isinteger(L, -2)) {
      intKeys.push(Number(m._lua_tointegerx(L, -2, 0)));
      intVals.push(encodeAt(api, L, valueIdx, call, depth + 1, seen));
    } else if (kt === LuaType.Number) {
      const k = String(m._lua_tonumberx(L, -2, 0));
      strKeys.push(k);
      strVals.set(k, encodeAt(api, L, valueIdx, call, depth + 1, seen));
    } else {
      throw new Error(`cannot encode a table with a ${typeName(kt)} key as JSON`);
    }
    api.pop(L, 1);
  }
  seen.delete(ptr);

  const n = intKeys.length;
  if (strKeys.length === 0 && (n > 0 || markedArray) && isDenseFromOne(intKeys)) {
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[intKeys[i] - 1] = intVals[i];
    return `[${out.join(',')}]`;
  }
  // A mixed or sparse table is an object; integer keys become their decimal text, as JSON requires.
  for (let i = 0; i < n; i++) {
    const k = String(intKeys[i]);
    strKeys.push(k);
    strVals.set(k, intVals[i]);
  }
  const parts: string[] = [];
  for (const k of orderedKeys(call.keyOrder.get(ptr), strKeys, strVals)) parts.push(`${JSON.stringify(k)}:${strVals.get(k)}`);
  return `{${parts.join(',')}}`;
}

function isDenseFromOne(keys: number[]): boolean {
  const n = keys.length;
  for (const k of keys) if (k < 1 || k > n) return false;
  // Keys of a Lua table are unique, so n keys all within 1..n cover every index.
  return true;
}

/** Original decode order first (for keys still present), then the rest sorted so output is deterministic. */
function orderedKeys(hint: string[] | undefined, keys: string[], present: Map<string, string>): string[] {
  if (!hint) return keys.length > 1 ? keys.sort() : keys;
  const out: string[] = [];
  const used = new Set<string>();
  for (const k of hint) {
    if (present.has(k) && !used.has(k)) {
      out.push(k);
      used.add(k);
    }
  }
  const rest = keys.filter((k) => !used.has(k)).sort();
  return rest.length ? out.concat(rest) : out;
}

/** ctx tables are views of JS objects: encode the object itself (they are read-only, so nothing was changed). */
function encodeLazy(api: LuaApi, L: number, idx: number, call: CallState): string {
  const m = api.m;
  api.pushRef(L, call.refs.lazyIds);
  m._lua_pushvalue(L, idx);
  m._lua_rawget(L, -2);
  const id = m._lua_type(L, -1) === LuaType.Number ? Number(m._lua_tointegerx(L, -1, 0)) : -1;
  api.pop(L, 2);
  const obj = call.objects[id];
  if (obj === undefined) throw new Error('stale ctx table');
  return JSON.stringify(obj, (_k, v: unknown) => (typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) : v));
}
