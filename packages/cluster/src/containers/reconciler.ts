import { canonicalServiceName, type Resource } from '@octelium-ts/shared';
import type { Change, ResourceStore } from '../store/resource-store.js';
import type { ContainerEndpoints, WorkloadView } from './endpoints.js';
import type { ContainerRuntime } from './runtime.js';
import { aggregateStatus, scrub, type ContainerStatus } from './status.js';
import { secretsOf, serviceLabelOf, workloadsOf, type Workload } from './workload.js';

export interface ReconcilerOptions {
  /** Level-triggered safety net: every Service with containers is checked this often (default 5 s). */
  resyncMs?: number;
  /** Retry delay after a failed step: doubles from `initialMs` up to `maxMs` (defaults 1 s → 60 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** How long a replacement waits for requests in flight on old replicas before stopping them (default 30 s). */
  drainTimeoutMs?: number;
  log?: (msg: string) => void;
}

interface Backoff { failures: number; until: number; message: string }

/** A runtime error that means the runtime itself is gone (Docker socket refused): its replicas cannot be trusted. */
function runtimeUnreachable(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return ['ECONNREFUSED', 'ENOENT', 'EPIPE', 'ECONNRESET'].includes(code);
}

/**
 * Drives the container runtime from the store's change feed (style.md §11): reads the desired workloads from the
 * Services, asks the runtime for one idempotent step per workload, publishes ready replicas to the gateway and writes
 * `status.container`. Errors back off per workload and end up in the status; nothing here may crash the cluster.
 */
export class ContainerReconciler {
  readonly #backoff = new Map<string, Backoff>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #dirty = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Configs each Service label had the last time we looked, to remove those the spec dropped. */
  readonly #known = new Map<string, Set<string>>();
  readonly #abort = new AbortController();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #opts: Required<Omit<ReconcilerOptions, 'log'>> & { log: (msg: string) => void };
  #closed = false;

  constructor(
    private readonly store: ResourceStore,
    private readonly runtime: ContainerRuntime | undefined,
    private readonly endpoints: ContainerEndpoints,
    /** Why there is no runtime, when there is none (shown in status and 503s). */
    private readonly unavailableReason: string,
    opts: ReconcilerOptions = {},
  ) {
    this.#opts = {
      resyncMs: opts.resyncMs ?? 5_000,
      backoff: opts.backoff ?? { initialMs: 1_000, maxMs: 60_000 },
      drainTimeoutMs: opts.drainTimeoutMs ?? 30_000,
      log: opts.log ?? ((m) => console.error(`containers: ${m}`)),
    };
    if (!runtime) endpoints.unavailableReason = unavailableReason;
  }

  /** Adopts what runs, removes orphans, then follows the change feed. Never throws. */
  async start(): Promise<void> {
    if (this.#closed) return; // stopped before it started (leadership.ts: the lease was lost at once)
    this.#unsubscribe.push(this.store.watch((c) => this.#onChange(c)));
    if (this.runtime) {
      try {
        await this.#adopt(this.runtime);
      } catch (err) {
        this.#opts.log(`could not list running containers on start (${(err as Error).message}); will retry on resync`);
      }
      if (this.#closed) return;
      const stop = this.runtime.watch?.((label) => this.schedule(canonicalServiceName(label)));
      if (stop) this.#unsubscribe.push(stop);
    }
    this.resync();
    const timer = setInterval(() => this.resync(), this.#opts.resyncMs);
    timer.unref();
    this.#timers.add(timer);
  }

  /**
   * Checks every Service that has (or had) containers, including those a previous leader published endpoints for
   * (leadership.ts): a Service deleted while no process led still has its endpoints removed.
   */
  resync(): void {
    const names = new Set(this.store.list('Service').filter((s) => this.#hasContainers(s)).map((s) => s.metadata.name));
    for (const label of this.#known.keys()) names.add(canonicalServiceName(label));
    for (const key of this.endpoints.keys()) names.add(canonicalServiceName(key.slice(0, key.indexOf('/'))));
    for (const n of names) this.schedule(n);
  }

  /** Queues one reconcile of the Service; a request while one runs makes it run once more afterwards. */
  schedule(serviceName: string): void {
    if (this.#closed) return;
    if (this.#running.has(serviceName)) {
      this.#dirty.add(serviceName);
      return;
    }
    const run = (async () => {
      do {
        this.#dirty.delete(serviceName);
        try {
          await this.#reconcile(serviceName);
        } catch (err) {
          // #reconcile handles runtime errors itself; anything here is a bug, logged and retried on resync.
          this.#opts.log(`reconcile of service "${serviceName}" failed: ${(err as Error).stack ?? err}`);
        }
      } while (this.#dirty.has(serviceName) && !this.#closed);
    })().finally(() => this.#running.delete(serviceName));
    this.#running.set(serviceName, run);
  }

  /** Resolves once no reconcile is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running.size) await Promise.allSettled([...this.#running.values()]);
  }

  /**
   * Stops reconciling. Containers keep running: the next start adopts them. The runtime stays open (its owner, the
   * cluster, closes it): a process that leads again later starts a new reconciler on it.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const u of this.#unsubscribe) u();
    for (const t of this.#timers) clearTimeout(t);
    this.#abort.abort();
    // A pull from a slow registry cannot be interrupted: wait a little for running steps, never for ever.
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, 2_000).unref())]);
  }

  #hasContainers(s: Resource): boolean {
    return workloadsOf(s, () => undefined).length > 0;
  }

  #onChange(c: Change): void {
    if (c.resource.kind === 'Service') {
      // Our own status writes come back as MODIFIED with the same spec: nothing to do for them.
      if (c.type === 'MODIFIED' && c.previous && c.previous.metadata.uid === c.resource.metadata.uid
        && JSON.stringify(c.previous.spec) === JSON.stringify(c.resource.spec)) return;
      if (c.type === 'DELETED' && !this.#known.has(serviceLabelOf(c.resource.metadata.name)) && !this.#hasContainers(c.resource)) return;
      this.#backoff.forEach((_, k) => k.startsWith(`${serviceLabelOf(c.resource.metadata.name)}/`) && this.#backoff.delete(k));
      this.schedule(c.resource.metadata.name);
    } else if (c.resource.kind === 'Secret') {
      // A Secret a container reads changed: its workloads' hashes change, so they are replaced.
      for (const s of this.store.list('Service')) {
        if (workloadsOf(s, () => undefined).some((w) => secretsOf(w.container).includes(c.resource.metadata.name))) {
          this.#backoff.forEach((_, k) => k.startsWith(`${serviceLabelOf(s.metadata.name)}/`) && this.#backoff.delete(k));
          this.schedule(s.metadata.name);
        }
      }
    }
  }

  async #adopt(runtime: ContainerRuntime): Promise<void> {
    const observed = await runtime.list();
    for (const o of observed) {
      const svc = this.store.get('Service', canonicalServiceName(o.serviceLabel));
      const desired = svc && svc.metadata.uid === o.serviceUid ? workloadsOf(svc, (n) => this.#secretVersion(n)).find((w) => w.config === o.config) : undefined;
      if (!desired) {
        this.#opts.log(`removing orphaned containers of ${o.serviceLabel} (config ${o.config}): ${o.ids.map((i) => i.slice(0, 12)).join(', ')}`);
        await runtime.remove(o.serviceLabel, o.config).catch((err) => this.#opts.log(`could not remove orphans of ${o.serviceLabel}: ${(err as Error).message}`));
        continue;
      }
      const known = this.#known.get(o.serviceLabel) ?? new Set();
      known.add(o.config);
      this.#known.set(o.serviceLabel, known);
    }
  }

  #secretVersion(name: string): string | undefined {
    return this.store.get('Secret', name)?.metadata.resourceVersion;
  }

  #secretValue = (name: string): string => {
    const v = this.store.get('Secret', name)?.data?.value;
    if (v === undefined) throw new Error(`Secret "${name}" does not exist`);
    return v;
  };

  async #reconcile(serviceName: string): Promise<void> {
    const svc = this.store.get('Service', serviceName);
    const label = serviceLabelOf(serviceName);
    const desired = svc ? workloadsOf(svc, (n) => this.#secretVersion(n)) : [];
    const wanted = new Set(desired.map((w) => w.config));

    // Workloads the spec no longer has (or the Service is gone): stop routing to them, then remove them.
    for (const key of this.endpoints.keys()) {
      if (key.startsWith(`${label}/`) && !wanted.has(key.slice(label.length + 1))) this.endpoints.delete(key);
    }
    const known = this.#known.get(label) ?? new Set<string>();
    if (this.runtime) {
      for (const config of [...known]) {
        if (wanted.has(config)) continue;
        try {
          await this.runtime.remove(label, config);
          known.delete(config);
        } catch (err) {
          this.#opts.log(`could not remove containers of ${label} (config ${config}): ${(err as Error).message}`);
        }
      }
    }
    if (!desired.length) {
      if (known.size === 0) this.#known.delete(label);
      if (svc) this.#writeStatus(svc.metadata.name, undefined);
      return;
    }
    this.#known.set(label, new Set([...known, ...wanted]));

    const results: Array<{ workload: Workload; view: WorkloadView }> = [];
    for (const w of desired) results.push({ workload: w, view: await this.#step(w) });
    this.#writeStatus(serviceName, aggregateStatus(results), svc!.metadata.uid);
  }

  /** One runtime step for one workload, with backoff; returns what the gateway and the status should show. */
  async #step(w: Workload): Promise<WorkloadView> {
    const current = this.endpoints.get(w.key);
    if (!this.runtime) {
      const view: WorkloadView = { state: 'Pending', replicas: w.replicas, ready: 0, message: this.unavailableReason, endpoints: [] };
      this.endpoints.set(w.key, view);
      return view;
    }
    const b = this.#backoff.get(w.key);
    if (b && Date.now() < b.until && current) return current;
    const secrets = this.#secretsFor(w);
    try {
      const view = await this.runtime.ensure(w, {
        secret: this.#secretValue,
        // While a failed workload is retried, the gateway keeps saying why it failed, not "starting".
        publish: (v) => this.endpoints.set(w.key, b && !v.endpoints.length ? { ...v, state: 'Failed', message: `${b.message} (retrying)` } : v),
        drain: (ids) => this.endpoints.drain(ids, this.#opts.drainTimeoutMs),
        signal: this.#abort.signal,
      });
      this.#backoff.delete(w.key);
      const clean = { ...view, message: scrub(view.message, secrets) };
      this.endpoints.set(w.key, clean);
      return clean;
    } catch (err) {
      const failures = (b?.failures ?? 0) + 1;
      const delay = Math.min(this.#opts.backoff.initialMs * 2 ** (failures - 1), this.#opts.backoff.maxMs);
      const message = scrub((err as Error).message || String(err), secrets);
      this.#backoff.set(w.key, { failures, until: Date.now() + delay, message });
      const timer = setTimeout(() => { this.#timers.delete(timer); this.schedule(w.service); }, delay);
      timer.unref();
      this.#timers.add(timer);
      if (!this.#closed) this.#opts.log(`${w.key}: ${message} (attempt ${failures}, next in ${Math.round(delay / 1000)} s)`);
      // Replicas of the previous spec keep serving while the new one fails — unless the runtime itself is gone.
      const endpoints = runtimeUnreachable(err) ? [] : current?.endpoints ?? [];
      const view: WorkloadView = { state: 'Failed', replicas: w.replicas, ready: endpoints.length, message, endpoints };
      this.endpoints.set(w.key, view);
      return view;
    }
  }

  /** The values of the Secrets a workload reads, to keep them out of every message. */
  #secretsFor(w: Workload): string[] {
    return secretsOf(w.container).map((n) => this.store.get('Secret', n)?.data?.value).filter((v): v is string => Boolean(v));
  }

  #writeStatus(serviceName: string, container: ContainerStatus | undefined, uid?: string): void {
    const svc = this.store.get('Service', serviceName);
    if (!svc || (uid && svc.metadata.uid !== uid)) return;
    const before = (svc.status as { container?: unknown } | undefined)?.container;
    if (JSON.stringify(before) === JSON.stringify(container)) return;
    const { container: _old, ...rest } = (svc.status ?? {}) as Record<string, unknown>;
    const status = container ? { ...rest, container } : rest;
    try {
      this.store.update({ ...svc, status: status as Record<string, unknown> });
    } catch (err) {
      this.#opts.log(`could not write status of service "${serviceName}": ${(err as Error).message}`);
    }
  }
}
