/** Lua plugin runtime (wasmoon, Lua 5.4): the gateway's plugins stage drives it through LuaPluginHost. */
export { LuaPluginHost } from './plugin-host.js';
export { checkLuaScript } from './check-script.js';
export { createHttpFetch, defaultHttpFetch, MAX_HTTP_RESPONSE_BYTES, type LuaHttpFetch } from './http-fetch.js';
export type { LuaFailure } from './engine.js';
export type {
  LuaHook,
  LuaHostOptions,
  LuaHttpRequest,
  LuaHttpResponse,
  LuaOutcome,
  LuaRequestState,
  LuaResponseState,
} from './types.js';
