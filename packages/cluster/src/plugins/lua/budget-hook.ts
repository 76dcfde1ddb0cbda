import { LUA_MASKCOUNT, type LuaApi } from './lua-api.js';
import { activeCall } from './call-state.js';

/** Instructions between two budget checks: frequent enough to stop a loop within microseconds, cheap otherwise. */
export const HOOK_INSTRUCTIONS = 1000;

export const TIMEOUT_MESSAGE = 'plugin CPU budget exceeded';

/**
 * The count hook that enforces the per-call budget. Once the deadline has passed it yields the running coroutine
 * (hooks may yield in Lua 5.4), which `pcall` cannot intercept, and the engine abandons the call. Where yielding is
 * impossible (inside a C call such as a table.sort comparator) it raises an error instead and re-arms itself for
 * every instruction, so a `pcall` loop is hit again right after catching it, until a yieldable frame is reached.
 */
export function createBudgetHook(api: LuaApi): number {
  const m = api.m;
  let self = 0;
  self = m.addFunction((L: number): void => {
    const call = activeCall();
    if (!call || performance.now() <= call.deadline) return;
    call.timedOut = true;
    if (m._lua_isyieldable(L)) {
      m._lua_yieldk(L, 0, 0, 0);
      return;
    }
    m._lua_sethook(L, self, LUA_MASKCOUNT, 1);
    api.pushString(L, TIMEOUT_MESSAGE);
    m._lua_error(L);
  }, 'vii');
  return self;
}
