import type { LuaHttpRequest, LuaHttpResponse, LuaRequestState, LuaResponseState } from './types.js';
import type { SchemaValidator } from './schema-validator.js';

/** What a finished http.client call hands back to the suspended script. */
export type HttpResult = { status: number; body: string } | { error: string };

/** Registry references of the engine running the call, needed by host functions that build or inspect tables. */
export interface EngineRefs {
  /** Weak-keyed set of tables that encode as JSON arrays even when empty. */
  arrays: number;
  lazyMt: number;
  lazyIds: number;
}

/**
 * Everything one hook invocation may read or change. Host functions are shared by all engines (they are plain
 * function-table entries), so they find their call through `activeCall()`: JS runs one Lua resume at a time.
 */
export class CallState {
  readonly mode: 'request' | 'response' | 'probe';
  readonly req?: LuaRequestState;
  readonly resp?: LuaResponseState;
  /** Objects exposed to Lua as lazy read-only tables; index 0 is the RequestFacts root (`ctx`). */
  readonly objects: unknown[];
  readonly refs: EngineRefs;
  readonly validator: SchemaValidator;
  readonly httpFetch: (req: LuaHttpRequest) => Promise<LuaHttpResponse>;
  readonly httpTimeoutMs: number;
  readonly log: (line: string) => void;
  /** The coroutine running the hook: http.client may only suspend this one. */
  thread = 0;
  /** performance.now() value after which the script is stopped; pushed back while waiting on http.client. */
  deadline = Infinity;
  timedOut = false;
  pending?: Promise<HttpResult>;
  exit?: { status: number; body?: string };
  bodyChanged = false;
  headersChanged = false;
  pathChanged = false;
  statusChanged = false;
  /** Key order of objects decoded by json.decode, by table address, so json.encode keeps the original order. */
  readonly keyOrder = new Map<number, string[]>();

  constructor(init: {
    mode: CallState['mode'];
    req?: LuaRequestState;
    resp?: LuaResponseState;
    facts: unknown;
    refs: EngineRefs;
    validator: SchemaValidator;
    httpFetch: CallState['httpFetch'];
    httpTimeoutMs: number;
    log: (line: string) => void;
  }) {
    this.mode = init.mode;
    this.req = init.req;
    this.resp = init.resp;
    this.objects = [init.facts ?? {}];
    this.refs = init.refs;
    this.validator = init.validator;
    this.httpFetch = init.httpFetch;
    this.httpTimeoutMs = init.httpTimeoutMs;
    this.log = init.log;
  }
}

let active: CallState | undefined;

export function activeCall(): CallState | undefined {
  return active;
}

export function setActiveCall(call: CallState | undefined): void {
  active = call;
}
