/** Public shapes of the Lua plugin runtime; the gateway builds these from its request/response. */

export interface LuaHttpRequest {
  method: 'GET' | 'POST' | string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

export interface LuaHttpResponse {
  status: number;
  body: string;
}

export interface LuaHostOptions {
  /**
   * Outgoing HTTP for http.client(); the cluster injects one that resolves `<svc>.<ns>.svc` / `<svc>.svc` hosts to
   * its own Services. Default: undici request with timeout, to public addresses only (http-fetch.ts).
   */
  httpFetch?: (req: LuaHttpRequest) => Promise<LuaHttpResponse>;
  /** Script CPU/time budget per hook call, default 50. Time spent waiting on http.client calls is not counted. */
  defaultTimeoutMs?: number;
  /** Engines per script, default 2. */
  poolSize?: number;
  /** Wall-clock cap for one http.client call, default 5000. */
  httpTimeoutMs?: number;
  /** Cap on the memory one engine's Lua state may allocate, default 32 MiB. */
  memoryLimitBytes?: number;
  /** Receives the script's print() output; default: dropped. */
  log?: (key: string, line: string) => void;
}

export interface LuaRequestState {
  method: string;
  path: string;
  /** Lower-case keys; the script's edits are applied in place. */
  headers: Record<string, string>;
  body: string | undefined;
}

export interface LuaResponseState {
  status: number;
  headers: Record<string, string>;
  body: string | undefined;
}

export type LuaOutcome =
  | {
      kind: 'continue';
      bodyChanged: boolean;
      headersChanged: boolean;
      /** onRequest only: octelium.req.setPath() was called. */
      pathChanged?: boolean;
      /** onResponse only: octelium.resp.setStatusCode() was called. */
      statusChanged?: boolean;
    }
  | { kind: 'exit'; status: number; body?: string };

export type LuaHook = 'onRequest' | 'onResponse';
