import { LuaType, typeName, type LuaApi } from './lua-api.js';
import { activeCall, type CallState, type HttpResult } from './call-state.js';
import { encodeLuaValue, pushJsonValue } from './json-codec.js';
import type { LuaHttpRequest } from './types.js';

/** An error whose message is meant for the script author as is (no function-name prefix added). */
class ScriptError extends Error {}

type Impl = (api: LuaApi, L: number, call: CallState) => number;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE_FORBIDDEN = /[\r\n\0]/;

function argString(api: LuaApi, L: number, i: number, fn: string): string {
  const t = api.m._lua_type(L, i);
  if (t !== LuaType.String && t !== LuaType.Number) {
    throw new ScriptError(`bad argument #${i} to '${fn}' (string expected, got ${typeName(t)})`);
  }
  return api.readString(L, i)!;
}

function argOptString(api: LuaApi, L: number, i: number, fn: string): string | undefined {
  const t = api.m._lua_type(L, i);
  return t === LuaType.Nil || t === LuaType.None ? undefined : argString(api, L, i, fn);
}

function argInteger(api: LuaApi, L: number, i: number, fn: string): number {
  const m = api.m;
  if (m._lua_type(L, i) === LuaType.Number) {
    if (m._lua_isinteger(L, i)) return Number(m._lua_tointegerx(L, i, 0));
    const n = m._lua_tonumberx(L, i, 0);
    if (Number.isInteger(n)) return n;
  }
  throw new ScriptError(`bad argument #${i} to '${fn}' (integer expected, got ${typeName(m._lua_type(L, i))})`);
}

function argStatus(api: LuaApi, L: number, i: number, fn: string): number {
  const code = argInteger(api, L, i, fn);
  if (code < 100 || code > 599) throw new ScriptError(`bad argument #${i} to '${fn}' (HTTP status ${code} out of range)`);
  return code;
}

function headerName(api: LuaApi, L: number, fn: string): string {
  const name = argString(api, L, 1, fn);
  // __proto__ is a valid token but would hit Object.prototype on a plain headers object.
  if (!HEADER_NAME.test(name) || name === '__proto__') throw new ScriptError(`${fn}: invalid header name "${name}"`);
  return name.toLowerCase();
}

function headerValue(api: LuaApi, L: number, fn: string): string {
  const value = argString(api, L, 2, fn);
  if (HEADER_VALUE_FORBIDDEN.test(value)) throw new ScriptError(`${fn}: header value must not contain CR, LF or NUL`);
  return value;
}

function pushOptString(api: LuaApi, L: number, s: string | undefined): number {
  if (s === undefined) return 0;
  api.pushString(L, s);
  return 1;
}

function requestOf(call: CallState) {
  if (call.mode !== 'request' || !call.req) throw new ScriptError('octelium.req is only available in onRequest');
  return call.req;
}

function responseOf(call: CallState) {
  if (call.mode !== 'response' || !call.resp) throw new ScriptError('octelium.resp is only available in onResponse');
  return call.resp;
}

function getHeader(headers: Record<string, string>, name: string): string | undefined {
  return Object.hasOwn(headers, name) ? headers[name] : undefined;
}

/** Pushes one value of the facts tree: primitives as is, objects as `nil, id` so the prelude wraps them lazily. */
function pushFact(api: LuaApi, L: number, call: CallState, v: unknown, depth = 0): number {
  const m = api.m;
  switch (typeof v) {
    case 'string':
      api.pushString(L, v);
      return 1;
    case 'number':
      if (Number.isSafeInteger(v)) m._lua_pushinteger(L, BigInt(v));
      else m._lua_pushnumber(L, v);
      return 1;
    case 'boolean':
      m._lua_pushboolean(L, v ? 1 : 0);
      return 1;
    case 'bigint':
      if (v >= -(2n ** 63n) && v < 2n ** 63n) m._lua_pushinteger(L, v);
      else api.pushString(L, v.toString());
      return 1;
    case 'object': {
      if (v === null) return 0;
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function' && depth === 0) return pushFact(api, L, call, toJSON.call(v), 1);
      m._lua_pushnil(L);
      m._lua_pushinteger(L, BigInt(call.objects.push(v) - 1));
      return 2;
    }
    default:
      return 0;
  }
}

function factsObject(api: LuaApi, L: number, call: CallState, fn: string): unknown {
  const id = argInteger(api, L, 1, fn);
  const obj = call.objects[id];
  if (obj === undefined) throw new ScriptError('stale ctx table');
  return obj;
}

function startHttp(call: CallState, req: LuaHttpRequest): Promise<HttpResult> {
  let timer: NodeJS.Timeout | undefined;
  // The cap holds even if an injected httpFetch ignores req.timeoutMs.
  const capped = new Promise<HttpResult>((resolve) => {
    timer = setTimeout(() => resolve({ error: `timeout after ${req.timeoutMs} ms` }), req.timeoutMs);
  });
  const fetched = Promise.resolve()
    .then(() => call.httpFetch(req))
    .then(
      (r): HttpResult => ({ status: Math.trunc(Number(r.status)), body: typeof r.body === 'string' ? r.body : String(r.body ?? '') }),
      (err: unknown): HttpResult => ({ error: err instanceof Error ? err.message || err.name : String(err) }),
    );
  return Promise.race([fetched, capped]).finally(() => clearTimeout(timer));
}

/**
 * get/set/delete for one side's headers (`reqGetHeader` … / `respGetHeader` …): the request and the response have the
 * same three functions over their own header map; `side` names them in Lua error messages (`setRequestHeader`).
 */
function headerFunctions(prefix: 'req' | 'resp', side: 'Request' | 'Response', of: (call: CallState) => { headers: Record<string, string> }): Record<string, Impl> {
  return {
    [`${prefix}GetHeader`]: (api, L, call) => pushOptString(api, L, getHeader(of(call).headers, headerName(api, L, `get${side}Header`))),
    [`${prefix}SetHeader`]: (api, L, call) => {
      const target = of(call);
      target.headers[headerName(api, L, `set${side}Header`)] = headerValue(api, L, `set${side}Header`);
      call.headersChanged = true;
      return 0;
    },
    [`${prefix}DeleteHeader`]: (api, L, call) => {
      const target = of(call);
      const name = headerName(api, L, `delete${side}Header`);
      if (Object.hasOwn(target.headers, name)) {
        delete target.headers[name];
        call.headersChanged = true;
      }
      return 0;
    },
  };
}

const IMPLS: Record<string, Impl> = {
  reqGetBody: (api, L, call) => pushOptString(api, L, requestOf(call).body ?? ''),
  reqSetBody: (api, L, call) => {
    const req = requestOf(call);
    req.body = argString(api, L, 1, 'setRequestBody');
    call.bodyChanged = true;
    return 0;
  },
  reqExit: (api, L, call) => {
    requestOf(call);
    const status = argStatus(api, L, 1, 'exit');
    call.exit = { status, body: argOptString(api, L, 2, 'exit') };
    return 0;
  },
  ...headerFunctions('req', 'Request', requestOf),
  reqGetPath: (api, L, call) => pushOptString(api, L, requestOf(call).path),
  reqSetPath: (api, L, call) => {
    const req = requestOf(call);
    const path = argString(api, L, 1, 'setPath');
    if (!path.startsWith('/') || /[\s\0]/.test(path)) throw new ScriptError(`setPath: invalid path "${path}"`);
    req.path = path;
    call.pathChanged = true;
    return 0;
  },
  reqGetMethod: (api, L, call) => pushOptString(api, L, requestOf(call).method),

  respGetBody: (api, L, call) => pushOptString(api, L, responseOf(call).body ?? ''),
  respSetBody: (api, L, call) => {
    const resp = responseOf(call);
    resp.body = argString(api, L, 1, 'setResponseBody');
    call.bodyChanged = true;
    return 0;
  },
  ...headerFunctions('resp', 'Response', responseOf),
  respGetStatus: (api, L, call) => {
    api.m._lua_pushinteger(L, BigInt(responseOf(call).status));
    return 1;
  },
  respSetStatus: (api, L, call) => {
    const resp = responseOf(call);
    resp.status = argStatus(api, L, 1, 'setStatusCode');
    call.statusChanged = true;
    return 0;
  },

  jsonDecode: (api, L, call) => {
    const text = argString(api, L, 1, 'json.decode');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ScriptError(`json.decode: invalid JSON (${(err as Error).message})`);
    }
    pushJsonValue(api, L, value, call);
    return 1;
  },
  jsonEncode: (api, L, call) => {
    if (api.m._lua_gettop(L) < 1) api.m._lua_pushnil(L);
    api.pushString(L, encodeLuaValue(api, L, 1, call));
    return 1;
  },
  jsonIsSchemaValid: (api, L, call) => {
    // Either argument may be JSON text or a Lua value to encode.
    const text = (i: number) => (api.m._lua_type(L, i) === LuaType.String ? api.readString(L, i)! : encodeLuaValue(api, L, i, call));
    const ok = call.validator.isValid(text(1), text(2));
    api.m._lua_pushboolean(L, ok ? 1 : 0);
    return 1;
  },

  factsGet: (api, L, call) => {
    const obj = factsObject(api, L, call, 'ctx');
    const m = api.m;
    const kt = m._lua_type(L, 2);
    let v: unknown;
    if (Array.isArray(obj)) {
      if (kt === LuaType.Number && m._lua_isinteger(L, 2)) v = obj[Number(m._lua_tointegerx(L, 2, 0)) - 1];
    } else if (kt === LuaType.String || kt === LuaType.Number) {
      const key = api.readString(L, 2)!;
      if (Object.hasOwn(obj as object, key)) v = (obj as Record<string, unknown>)[key];
    }
    return pushFact(api, L, call, v);
  },
  factsLen: (api, L, call) => {
    const obj = factsObject(api, L, call, 'ctx');
    api.m._lua_pushinteger(L, BigInt(Array.isArray(obj) ? obj.length : 0));
    return 1;
  },
  factsKeys: (api, L, call) => {
    const obj = factsObject(api, L, call, 'ctx');
    const m = api.m;
    if (Array.isArray(obj)) {
      m._lua_createtable(L, obj.length, 0);
      for (let i = 1; i <= obj.length; i++) {
        m._lua_pushinteger(L, BigInt(i));
        m._lua_rawseti(L, -2, BigInt(i));
      }
    } else {
      const keys = Object.keys(obj as object);
      m._lua_createtable(L, keys.length, 0);
      keys.forEach((k, i) => {
        api.pushString(L, k);
        m._lua_rawseti(L, -2, BigInt(i + 1));
      });
    }
    return 1;
  },

  httpStart: (api, L, call) => {
    if (call.mode === 'probe') throw new ScriptError('http.client cannot be used while the script loads');
    if (L !== call.thread) throw new ScriptError('http.client cannot be used inside a coroutine');
    const method = argString(api, L, 1, 'http').toUpperCase();
    const url = argString(api, L, 2, 'http');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ScriptError(`http.client: invalid URL "${url}" (set a base URL with setBaseURL)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ScriptError(`http.client: unsupported URL scheme "${parsed.protocol}"`);
    const headers: Record<string, string> = {};
    const m = api.m;
    if (m._lua_type(L, 3) === LuaType.Table) {
      m._lua_pushnil(L);
      while (m._lua_next(L, 3)) {
        if (m._lua_type(L, -2) !== LuaType.String) throw new ScriptError('http.client: header names must be strings');
        const k = api.readString(L, -2)!;
        const vt = m._lua_type(L, -1);
        if (vt !== LuaType.String && vt !== LuaType.Number) throw new ScriptError(`http.client: header "${k}" must be a string`);
        const v = api.readString(L, -1)!;
        if (!HEADER_NAME.test(k) || HEADER_VALUE_FORBIDDEN.test(v)) throw new ScriptError(`http.client: invalid header "${k}"`);
        headers[k.toLowerCase()] = v;
        api.pop(L, 1);
      }
    }
    const body = argOptString(api, L, 4, 'setBody');
    call.pending = startHttp(call, { method, url: parsed.href, headers, body, timeoutMs: call.httpTimeoutMs });
    return 0;
  },

  log: (api, L, call) => {
    call.log(argString(api, L, 1, 'print'));
    return 0;
  },
};

/**
 * Registers every host function in the wasm function table once per process; all engines share them (they find
 * their call through activeCall()). Returns name -> lua_CFunction pointer.
 */
export function createHostFunctions(api: LuaApi): Map<string, number> {
  const m = api.m;
  const out = new Map<string, number>();
  for (const [name, impl] of Object.entries(IMPLS)) {
    const ptr = m.addFunction((L: number): number => {
      let message: string;
      try {
        const call = activeCall();
        if (!call) throw new ScriptError(`${name}: no plugin call is active`);
        return impl(api, L, call);
      } catch (err) {
        // Numbers are emscripten's longjmp (a Lua error raised inside the C API): they must keep unwinding.
        if (typeof err === 'number') throw err;
        message = err instanceof ScriptError ? err.message : `${name}: ${err instanceof Error ? err.message : String(err)}`;
      }
      // Prefix "chunk:line:" of the calling Lua code, as luaL_error does.
      m._luaL_where(L, 1);
      api.pushString(L, message);
      m._lua_concat(L, 2);
      return m._lua_error(L);
    }, 'ii');
    out.set(name, ptr);
  }
  return out;
}
