import { OcteliumError } from '@octelium-ts/shared';
import type { RequestFacts } from '../../gateway/request-facts.js';
import { CallState } from './call-state.js';
import { EnginePool } from './engine-pool.js';
import { LuaCompileError, PluginEngine } from './engine.js';
import { defaultHttpFetch } from './http-fetch.js';
import { getLuaRuntime, type LuaRuntime } from './runtime.js';
import { SchemaValidator } from './schema-validator.js';
import type { LuaHook, LuaHostOptions, LuaOutcome, LuaRequestState, LuaResponseState } from './types.js';

const DEFAULTS = {
  defaultTimeoutMs: 50,
  poolSize: 2,
  httpTimeoutMs: 5000,
  memoryLimitBytes: 32 * 1024 * 1024,
};

function positive(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : fallback;
}

/**
 * Runs Lua plugin hooks for the gateway. Engines are compiled once per `key` (a script version, e.g. service uid +
 * resourceVersion + plugin name) and pooled; a failing script fails closed with OcteliumError PLUGIN_FAILED whose
 * `details.reason` is 'compile' | 'error' | 'timeout' | 'fault'.
 */
export class LuaPluginHost {
  private readonly opts: typeof DEFAULTS & Pick<LuaHostOptions, 'log'> & { httpFetch: NonNullable<LuaHostOptions['httpFetch']> };
  private readonly pools = new Map<string, EnginePool>();
  private readonly compileErrors = new Map<string, { script: string; message: string }>();
  private readonly validator = new SchemaValidator();
  private runtime?: LuaRuntime;
  private closed = false;

  constructor(opts: LuaHostOptions = {}) {
    this.opts = {
      defaultTimeoutMs: positive(opts.defaultTimeoutMs, DEFAULTS.defaultTimeoutMs),
      poolSize: Math.max(1, Math.floor(positive(opts.poolSize, DEFAULTS.poolSize))),
      httpTimeoutMs: positive(opts.httpTimeoutMs, DEFAULTS.httpTimeoutMs),
      memoryLimitBytes: positive(opts.memoryLimitBytes, DEFAULTS.memoryLimitBytes),
      httpFetch: opts.httpFetch ?? defaultHttpFetch,
      log: opts.log,
    };
  }

  /** `httpFetch` replaces the host's transport for this call (e.g. one that allows private networks for this plugin). */
  async runOnRequest(key: string, script: string, facts: RequestFacts, state: LuaRequestState, timeoutMs?: number, httpFetch?: LuaHostOptions['httpFetch']): Promise<LuaOutcome> {
    const call = await this.invoke(key, script, 'onRequest', facts, { req: state }, timeoutMs, httpFetch);
    if (call.exit) return { kind: 'exit', status: call.exit.status, ...(call.exit.body === undefined ? {} : { body: call.exit.body }) };
    return { kind: 'continue', bodyChanged: call.bodyChanged, headersChanged: call.headersChanged, pathChanged: call.pathChanged };
  }

  /** Continues unchanged when the script has no onResponse. */
  async runOnResponse(key: string, script: string, facts: RequestFacts, state: LuaResponseState, timeoutMs?: number, httpFetch?: LuaHostOptions['httpFetch']): Promise<LuaOutcome> {
    const call = await this.invoke(key, script, 'onResponse', facts, { resp: state }, timeoutMs, httpFetch);
    return { kind: 'continue', bodyChanged: call.bodyChanged, headersChanged: call.headersChanged, statusChanged: call.statusChanged };
  }

  /**
   * Whether the script defines `hook` (lets the gateway skip buffering responses nobody rewrites). Learnt once per
   * key by running the script's top level; if that fails, answers true so the real call reports the error.
   */
  async hasHook(key: string, script: string, hook: LuaHook): Promise<boolean> {
    const pool = await this.pool(key, script);
    let known = pool.hooks.get(hook);
    if (!known) {
      known = this.probe(pool, hook);
      pool.hooks.set(hook, known);
    }
    return known;
  }

  /** Drops the engines of every key starting with `keyPrefix` (busy engines are closed when their call ends). */
  evict(keyPrefix: string): void {
    for (const [key, pool] of this.pools) {
      if (key.startsWith(keyPrefix)) {
        pool.close();
        this.pools.delete(key);
      }
    }
    for (const key of this.compileErrors.keys()) if (key.startsWith(keyPrefix)) this.compileErrors.delete(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.evict('');
  }

  private async probe(pool: EnginePool, hook: LuaHook): Promise<boolean> {
    const engine = await pool.acquire();
    try {
      return await engine.run(this.newCall('probe', undefined, engine, {}), hook, true, this.opts.defaultTimeoutMs);
    } catch {
      return true;
    } finally {
      pool.release(engine);
    }
  }

  private async invoke(
    key: string,
    script: string,
    hook: LuaHook,
    facts: RequestFacts,
    state: { req?: LuaRequestState; resp?: LuaResponseState },
    timeoutMs: number | undefined,
    httpFetch: LuaHostOptions['httpFetch'],
  ): Promise<CallState> {
    const pool = await this.pool(key, script);
    let engine: PluginEngine;
    try {
      engine = await pool.acquire();
    } catch (err) {
      throw asFailure(err);
    }
    const call = this.newCall(hook === 'onRequest' ? 'request' : 'response', facts, engine, state, key, httpFetch);
    try {
      await engine.run(call, hook, false, positive(timeoutMs, this.opts.defaultTimeoutMs));
      return call;
    } finally {
      pool.release(engine);
    }
  }

  private newCall(
    mode: CallState['mode'],
    facts: unknown,
    engine: PluginEngine,
    state: { req?: LuaRequestState; resp?: LuaResponseState },
    key = '',
    httpFetch = this.opts.httpFetch,
  ): CallState {
    const log = this.opts.log;
    return new CallState({
      mode,
      ...state,
      facts,
      refs: engine.refs,
      validator: this.validator,
      httpFetch,
      httpTimeoutMs: this.opts.httpTimeoutMs,
      log: log ? (line) => log(key, line) : () => {},
    });
  }

  private async pool(key: string, script: string): Promise<EnginePool> {
    if (this.closed) throw new OcteliumError('PLUGIN_FAILED', 'Lua plugin host is closed', { reason: 'fault' });
    this.runtime ??= await getLuaRuntime();
    const rt = this.runtime;
    let pool = this.pools.get(key);
    if (pool && pool.script !== script) {
      // Same key, different text: the caller's key did not change with the script; never run stale code.
      pool.close();
      this.pools.delete(key);
      pool = undefined;
    }
    if (pool) return pool;
    const known = this.compileErrors.get(key);
    if (known && known.script === script) throw compileFailure(known.message);
    const create = () => PluginEngine.create(rt, script, this.opts.memoryLimitBytes);
    let first: PluginEngine;
    try {
      // The first engine is built here so that a script that does not compile fails once and is remembered.
      first = create();
    } catch (err) {
      if (err instanceof LuaCompileError) {
        this.compileErrors.set(key, { script, message: err.message });
        throw compileFailure(err.message);
      }
      throw asFailure(err);
    }
    pool = new EnginePool(script, create, this.opts.poolSize);
    pool.adopt(first);
    this.pools.set(key, pool);
    return pool;
  }
}

function compileFailure(message: string): OcteliumError {
  return new OcteliumError('PLUGIN_FAILED', `Lua script does not compile: ${message}`, { reason: 'compile' });
}

function asFailure(err: unknown): OcteliumError {
  if (err instanceof OcteliumError) return err;
  return new OcteliumError('PLUGIN_FAILED', `Lua plugin failed: ${err instanceof Error ? err.message : String(err)}`, { reason: 'fault' });
}
