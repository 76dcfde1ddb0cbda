import { loadLuaApi, type LuaApi } from './lua-api.js';
import { createBudgetHook } from './budget-hook.js';
import { createHostFunctions } from './host-functions.js';

/** Process-wide pieces shared by every engine: the wasm module, host function pointers and the budget hook. */
export interface LuaRuntime {
  api: LuaApi;
  hostFunctions: Map<string, number>;
  budgetHook: number;
}

let shared: Promise<LuaRuntime> | undefined;

export function getLuaRuntime(): Promise<LuaRuntime> {
  shared ??= loadLuaApi().then((api) => ({ api, hostFunctions: createHostFunctions(api), budgetHook: createBudgetHook(api) }));
  return shared;
}
