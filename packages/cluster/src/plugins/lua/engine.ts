import { OcteliumError } from '@octelium-ts/shared';
import { LUA_MASKCOUNT, LUA_OK, LUA_REGISTRYINDEX, LUA_YIELD } from './lua-api.js';
import { HOOK_INSTRUCTIONS } from './budget-hook.js';
import { setActiveCall, type CallState, type EngineRefs, type HttpResult } from './call-state.js';
import { PRELUDE } from './prelude.js';
import type { LuaRuntime } from './runtime.js';
import type { LuaHook } from './types.js';

/** Chunk name used in script error messages ("plugin:12: attempt to index a nil value"). */
const CHUNK_NAME = '=plugin';

export class LuaCompileError extends Error {}

/** Why a call failed; carried in OcteliumError.details.reason for the access log. */
export type LuaFailure = 'error' | 'timeout' | 'fault';

function failure(reason: LuaFailure, message: string): OcteliumError {
  return new OcteliumError('PLUGIN_FAILED', message, { reason });
}

/**
 * One Lua state with the sandbox prelude loaded and one script compiled. It runs one hook call at a time (the pool
 * checks it out); each call reuses the same coroutine, so the steady-state cost is a resume plus host calls.
 */
export class PluginEngine {
  /** False once the state may be inconsistent (timeout, JS fault): the pool closes it instead of reusing it. */
  reusable = true;
  readonly refs: EngineRefs;
  private readonly L: number;
  private readonly thread: number;
  private readonly dispatcher: number;
  private readonly allocator: number;
  private closed = false;

  private constructor(private readonly rt: LuaRuntime, init: { L: number; thread: number; dispatcher: number; allocator: number; refs: EngineRefs }) {
    this.L = init.L;
    this.thread = init.thread;
    this.dispatcher = init.dispatcher;
    this.allocator = init.allocator;
    this.refs = init.refs;
  }

  /** Builds the state; throws LuaCompileError for a script that does not compile. */
  static create(rt: LuaRuntime, script: string, memoryLimitBytes: number): PluginEngine {
    const { api } = rt;
    const m = api.m;
    // Lua allocates through this function so one engine cannot take the whole (shared, never shrinking) wasm heap.
    let used = 0;
    const allocator = m.addFunction((_ud: number, ptr: number, osize: number, nsize: number): number => {
      if (nsize === 0) {
        if (ptr) {
          used -= osize;
          m._free(ptr);
        }
        return 0;
      }
      // With ptr NULL, osize is a type tag, not a size.
      const delta = ptr ? nsize - osize : nsize;
      if (delta > 0 && used + delta > memoryLimitBytes) return 0;
      const p = m._realloc(ptr, nsize);
      if (p) used += delta;
      return p;
    }, 'iiiii');
    const L = m._lua_newstate(allocator, 0);
    if (!L) {
      m.removeFunction(allocator);
      throw new Error('could not create a Lua state');
    }
    try {
      m._luaL_openlibs(L);
      m._lua_sethook(L, rt.budgetHook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
      if (api.loadText(L, PRELUDE, '=prelude') !== LUA_OK) throw new Error(`prelude: ${api.errorText(L, -1)}`);
      m._lua_createtable(L, 0, rt.hostFunctions.size + 1);
      for (const [name, fn] of rt.hostFunctions) {
        m._lua_pushcclosure(L, fn, 0);
        m._lua_setfield(L, -2, api.cstr(name));
      }
      m._lua_pushlightuserdata(L, 0);
      m._lua_setfield(L, -2, api.cstr('null'));
      if (m._lua_pcallk(L, 1, 4, 0, 0, 0) !== LUA_OK) throw new Error(`prelude: ${api.errorText(L, -1)}`);
      // Stack: bind, LAZY_MT, LAZY_IDS, ARRAYS; luaL_ref pops from the top.
      const arrays = m._luaL_ref(L, LUA_REGISTRYINDEX);
      const lazyIds = m._luaL_ref(L, LUA_REGISTRYINDEX);
      const lazyMt = m._luaL_ref(L, LUA_REGISTRYINDEX);
      if (api.loadText(L, script, CHUNK_NAME) !== LUA_OK) throw new LuaCompileError(api.errorText(L, -1));
      if (m._lua_pcallk(L, 1, 1, 0, 0, 0) !== LUA_OK) throw new Error(`bind: ${api.errorText(L, -1)}`);
      const dispatcher = m._luaL_ref(L, LUA_REGISTRYINDEX);
      const thread = m._lua_newthread(L);
      m._luaL_ref(L, LUA_REGISTRYINDEX);
      m._lua_settop(L, 0);
      return new PluginEngine(rt, { L, thread, dispatcher, allocator, refs: { arrays, lazyIds, lazyMt } });
    } catch (err) {
      m._lua_close(L);
      m.removeFunction(allocator);
      throw err;
    }
  }

  /**
   * Runs the chunk and then `hook(ctx)` (or, when probing, only reports whether `hook` is defined). Resolves to
   * whether the hook exists; throws OcteliumError PLUGIN_FAILED on script errors and timeouts.
   */
  async run(call: CallState, hook: LuaHook, probe: boolean, budgetMs: number): Promise<boolean> {
    if (this.closed) throw failure('fault', 'Lua engine is closed');
    const { api } = this.rt;
    const m = api.m;
    const T = this.thread;
    m._lua_settop(T, 0);
    api.pushRef(T, this.dispatcher);
    api.pushString(T, hook);
    m._lua_pushboolean(T, probe ? 1 : 0);
    let nargs = 2;
    call.thread = T;
    call.deadline = performance.now() + budgetMs;
    for (;;) {
      let status: number;
      setActiveCall(call);
      try {
        status = m._lua_resume(T, 0, nargs, api.intSlot);
      } catch (err) {
        this.reusable = false;
        throw failure('fault', `Lua runtime fault: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        setActiveCall(undefined);
      }
      const nresults = m.HEAP32[api.intSlot >> 2];
      if (call.timedOut) {
        // The coroutine is suspended or unwound mid-way; never resume it.
        this.reusable = false;
        throw failure('timeout', `Lua plugin exceeded its ${budgetMs} ms CPU budget`);
      }
      if (status === LUA_OK) {
        const found = m._lua_toboolean(T, -1) === 1;
        m._lua_settop(T, 0);
        return found;
      }
      if (status === LUA_YIELD) {
        api.pop(T, nresults);
        const pending = call.pending;
        call.pending = undefined;
        if (!pending) {
          this.resetThread();
          throw failure('error', 'Lua error: coroutine.yield called outside a coroutine');
        }
        const pausedAt = performance.now();
        const result = await pending;
        // Waiting on the network is not CPU time; the http cap bounds it separately.
        call.deadline += performance.now() - pausedAt;
        nargs = this.pushHttpResult(result);
        continue;
      }
      const message = api.errorText(T, -1);
      this.resetThread();
      throw failure('error', `Lua error: ${message}`);
    }
  }

  private pushHttpResult(r: HttpResult): number {
    const { api } = this.rt;
    const T = this.thread;
    if ('error' in r) {
      api.m._lua_pushnil(T);
      api.m._lua_pushnil(T);
      api.pushString(T, r.error);
      return 3;
    }
    api.m._lua_pushinteger(T, BigInt(r.status));
    api.pushString(T, r.body);
    return 2;
  }

  /** After an error the coroutine is dead; lua_resetthread makes it usable for the next call. */
  private resetThread(): void {
    const m = this.rt.api.m;
    m._lua_resetthread(this.thread);
    m._lua_settop(this.thread, 0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const m = this.rt.api.m;
    m._lua_close(this.L);
    m.removeFunction(this.allocator);
  }
}
