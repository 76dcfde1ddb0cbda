import { LuaFactory } from 'wasmoon';

/**
 * Thin typed view of the Lua C API compiled into wasmoon's WebAssembly module. We call the raw exports instead of
 * wasmoon's `cwrap` helpers (≈35 ns vs ≈85 ns per call, measured) and instead of its JS<->Lua value bridge, which
 * cannot represent JSON null, empty arrays or yields from host functions the way the plugin API needs.
 * All engines share one module instance, hence one linear memory.
 */
export interface LuaRawModule {
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  HEAPU32: Uint32Array;
  addFunction(fn: (...args: number[]) => number | void, signature: string): number;
  removeFunction(ptr: number): void;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _realloc(ptr: number, size: number): number;
  _lua_newstate(alloc: number, ud: number): number;
  _luaL_newstate(): number;
  _lua_close(L: number): void;
  _luaL_openlibs(L: number): void;
  _luaL_loadbufferx(L: number, buf: number, size: number, name: number, mode: number): number;
  _lua_newthread(L: number): number;
  _lua_resetthread(L: number): number;
  _lua_resume(L: number, from: number, nargs: number, nresults: number): number;
  _lua_isyieldable(L: number): number;
  _lua_yieldk(L: number, nresults: number, ctx: number, k: number): number;
  _lua_pcallk(L: number, nargs: number, nresults: number, errfunc: number, ctx: number, k: number): number;
  _lua_error(L: number): number;
  _luaL_where(L: number, level: number): void;
  _lua_concat(L: number, n: number): void;
  _lua_sethook(L: number, fn: number, mask: number, count: number): void;
  _lua_gettop(L: number): number;
  _lua_settop(L: number, idx: number): void;
  _lua_absindex(L: number, idx: number): number;
  _lua_checkstack(L: number, n: number): number;
  _lua_pushvalue(L: number, idx: number): void;
  _lua_type(L: number, idx: number): number;
  _lua_typename(L: number, tp: number): number;
  _lua_isinteger(L: number, idx: number): number;
  _lua_tonumberx(L: number, idx: number, isnum: number): number;
  _lua_tointegerx(L: number, idx: number, isnum: number): bigint;
  _lua_toboolean(L: number, idx: number): number;
  _lua_tolstring(L: number, idx: number, len: number): number;
  _lua_topointer(L: number, idx: number): number;
  _lua_touserdata(L: number, idx: number): number;
  _lua_pushnil(L: number): void;
  _lua_pushnumber(L: number, n: number): void;
  _lua_pushinteger(L: number, n: bigint): void;
  _lua_pushlstring(L: number, s: number, len: number): number;
  _lua_pushboolean(L: number, b: number): void;
  _lua_pushlightuserdata(L: number, p: number): void;
  _lua_pushcclosure(L: number, fn: number, n: number): void;
  _lua_createtable(L: number, narr: number, nrec: number): void;
  _lua_rawget(L: number, idx: number): number;
  _lua_rawgeti(L: number, idx: number, n: bigint): number;
  _lua_rawset(L: number, idx: number): void;
  _lua_rawseti(L: number, idx: number, n: bigint): void;
  _lua_setfield(L: number, idx: number, k: number): void;
  _lua_next(L: number, idx: number): number;
  _lua_getmetatable(L: number, idx: number): number;
  _lua_setmetatable(L: number, idx: number): number;
  _lua_rawequal(L: number, a: number, b: number): number;
  _luaL_ref(L: number, t: number): number;
  _luaL_unref(L: number, t: number, ref: number): void;
}

export const LUA_OK = 0;
export const LUA_YIELD = 1;
export const LUA_REGISTRYINDEX = -1001000;
export const LUA_MASKCOUNT = 8;

export const enum LuaType {
  None = -1,
  Nil = 0,
  Boolean = 1,
  LightUserdata = 2,
  Number = 3,
  String = 4,
  Table = 5,
  Function = 6,
  Userdata = 7,
  Thread = 8,
}

const TYPE_NAMES = ['nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread'];
export function typeName(t: number): string {
  return TYPE_NAMES[t] ?? 'no value';
}

/** Byte threshold above which a string is staged in its own allocation rather than the shared scratch buffer. */
const SCRATCH_MAX = 64 * 1024;

/** The module plus the helpers every other file needs: string marshalling and a few constant C strings. */
export class LuaApi {
  readonly m: LuaRawModule;
  private readonly decoder = new TextDecoder();
  private readonly encoder = new TextEncoder();
  private scratch = 0;
  private scratchCap = 0;
  private readonly cstrings = new Map<string, number>();
  /** One int slot reused for out-parameters (string lengths, result counts); JS is single-threaded. */
  readonly intSlot: number;

  constructor(m: LuaRawModule) {
    this.m = m;
    this.intSlot = m._malloc(8);
  }

  /** A NUL-terminated copy of a constant, allocated once and kept for the process lifetime. */
  cstr(s: string): number {
    let p = this.cstrings.get(s);
    if (p === undefined) {
      const bytes = this.encoder.encode(s);
      p = this.m._malloc(bytes.length + 1);
      this.m.HEAPU8.set(bytes, p);
      this.m.HEAPU8[p + bytes.length] = 0;
      this.cstrings.set(s, p);
    }
    return p;
  }

  /** Copies `s` into wasm memory as UTF-8; returns [ptr, len, owned]. Owned buffers must be freed by the caller. */
  private stage(s: string): [number, number, boolean] {
    const max = s.length * 3;
    if (max > SCRATCH_MAX) {
      const p = this.m._malloc(max + 1);
      if (!p) throw new Error('out of memory staging a string');
      const { written } = this.encoder.encodeInto(s, this.m.HEAPU8.subarray(p, p + max));
      return [p, written, true];
    }
    if (max + 1 > this.scratchCap) {
      if (this.scratch) this.m._free(this.scratch);
      this.scratchCap = Math.max(256, max + 1, this.scratchCap * 2);
      this.scratch = this.m._malloc(this.scratchCap);
    }
    // HEAPU8 is read after any malloc: growing the memory replaces the view.
    const { written } = this.encoder.encodeInto(s, this.m.HEAPU8.subarray(this.scratch, this.scratch + max));
    return [this.scratch, written, false];
  }

  pushString(L: number, s: string): void {
    const [p, len, owned] = this.stage(s);
    try {
      this.m._lua_pushlstring(L, p, len);
    } finally {
      if (owned) this.m._free(p);
    }
  }

  /** Loads a chunk (text only: binary chunks can crash the VM); returns the Lua status, function or error on top. */
  loadText(L: number, source: string, chunkName: string): number {
    const [p, len, owned] = this.stage(source);
    try {
      return this.m._luaL_loadbufferx(L, p, len, this.cstr(chunkName), this.cstr('t'));
    } finally {
      if (owned) this.m._free(p);
    }
  }

  /** The string at `idx` (numbers are converted in place, as lua_tolstring does), or undefined for other types. */
  readString(L: number, idx: number): string | undefined {
    const m = this.m;
    const p = m._lua_tolstring(L, idx, this.intSlot);
    if (!p) return undefined;
    const len = m.HEAPU32[this.intSlot >> 2];
    const heap = m.HEAPU8;
    if (len < 48) {
      // Short ASCII keys and values dominate JSON bodies; building them directly beats TextDecoder's call overhead.
      let out = '';
      for (let i = 0; i < len; i++) {
        const c = heap[p + i];
        if (c >= 0x80) return this.decoder.decode(heap.subarray(p, p + len));
        out += String.fromCharCode(c);
      }
      return out;
    }
    return this.decoder.decode(heap.subarray(p, p + len));
  }

  /** A printable form of the error object at `idx` without running metamethods (they are script code). */
  errorText(L: number, idx: number): string {
    const t = this.m._lua_type(L, idx);
    if (t === LuaType.String || t === LuaType.Number) return this.readString(L, idx) ?? '';
    return `(error object is a ${typeName(t)} value)`;
  }

  pushRef(L: number, ref: number): void {
    this.m._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(ref));
  }

  pop(L: number, n: number): void {
    this.m._lua_settop(L, -n - 1);
  }
}

let shared: Promise<LuaApi> | undefined;

/** Instantiates wasmoon's WebAssembly module once per process. */
export function loadLuaApi(): Promise<LuaApi> {
  shared ??= new LuaFactory().getLuaModule().then((wasm) => new LuaApi((wasm as unknown as { module: LuaRawModule }).module));
  return shared;
}
