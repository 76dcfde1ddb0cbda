import type { PluginEngine } from './engine.js';

interface Waiter {
  resolve: (engine: PluginEngine) => void;
  reject: (err: unknown) => void;
}

/**
 * Engines for one compiled script version. Engines are created on demand up to `size`; further callers queue, since
 * an engine runs one call at a time (a call waiting on http.client keeps its engine).
 */
export class EnginePool {
  /** hook name -> whether the script defines it, learnt once per script version. */
  readonly hooks = new Map<string, Promise<boolean>>();
  private readonly idle: PluginEngine[] = [];
  private readonly waiters: Waiter[] = [];
  private total = 0;
  private closed = false;

  constructor(
    readonly script: string,
    private readonly create: () => PluginEngine,
    private readonly size: number,
  ) {}

  acquire(): Promise<PluginEngine> {
    if (this.closed) return Promise.reject(new Error('Lua engine pool is closed'));
    const engine = this.idle.pop();
    if (engine) return Promise.resolve(engine);
    if (this.total < this.size) return Promise.resolve(this.spawn());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Adds an engine created by the caller (the host builds the first one itself to surface compile errors). */
  adopt(engine: PluginEngine): void {
    this.total++;
    this.release(engine);
  }

  /** Returns an engine; unusable ones (timeout, fault) are closed and replaced for whoever waits. */
  release(engine: PluginEngine): void {
    if (this.closed || !engine.reusable) {
      engine.close();
      this.total--;
      const next = this.closed ? undefined : this.waiters.shift();
      if (next) {
        try {
          next.resolve(this.spawn());
        } catch (err) {
          next.reject(err);
        }
      }
      return;
    }
    const next = this.waiters.shift();
    if (next) next.resolve(engine);
    else this.idle.push(engine);
  }

  /** Closes idle engines now and busy ones when they come back. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const engine of this.idle.splice(0)) {
      engine.close();
      this.total--;
    }
    for (const w of this.waiters.splice(0)) w.reject(new Error('Lua engine pool is closed'));
  }

  private spawn(): PluginEngine {
    const engine = this.create();
    this.total++;
    return engine;
  }
}
