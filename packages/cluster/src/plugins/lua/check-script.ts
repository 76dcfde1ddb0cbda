import { LUA_OK } from './lua-api.js';
import { getLuaRuntime } from './runtime.js';

let checker: number | undefined;

/** Compile-check a script (syntax) without running it; returns an error message or undefined. Used at apply time. */
export async function checkLuaScript(script: string): Promise<string | undefined> {
  const { api } = await getLuaRuntime();
  const m = api.m;
  // A bare state is enough to parse: nothing is ever executed in it.
  checker ??= m._luaL_newstate();
  const L = checker;
  try {
    return api.loadText(L, script, '=plugin') === LUA_OK ? undefined : api.errorText(L, -1);
  } finally {
    m._lua_settop(L, 0);
  }
}
