import { durationMs, type Plugin, type Resource, type ServiceSpec } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;

/** Per-Service data derived once per resourceVersion, so the request path only does map lookups. */
export interface ServiceEntry {
  service: Resource;
  spec: ServiceSpec;
  /** Enabled plugins in execution order (phase, then written order). */
  plugins: Plugin[];
  timeoutMs: number;
  /** Stable key for per-version caches (compiled Lua, upstream OAuth2 tokens …). */
  versionKey: string;
}

function derive(service: Resource): ServiceEntry {
  const spec = service.spec as ServiceSpec;
  const plugins = (spec.config?.http?.plugins ?? [])
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => !p.isDisabled)
    .sort((a, b) => (a.p.phase ?? 0) - (b.p.phase ?? 0) || a.i - b.i)
    .map(({ p }) => p);
  return {
    service, spec, plugins,
    timeoutMs: durationMs(spec.config?.http?.timeout, DEFAULT_UPSTREAM_TIMEOUT_MS),
    versionKey: `${service.metadata.uid}@${service.metadata.resourceVersion}`,
  };
}

/** Services by canonical name (`svc`, `svc.ns`), kept current by the store's change feed. */
export class ServiceIndex {
  readonly #entries = new Map<string, ServiceEntry>();
  readonly #unwatch: () => void;

  constructor(store: ResourceStore, private readonly onChange?: (previous: ServiceEntry | undefined) => void) {
    for (const s of store.list('Service')) this.#entries.set(s.metadata.name, derive(s));
    this.#unwatch = store.watch((c) => {
      if (c.resource.kind !== 'Service') return;
      const name = c.resource.metadata.name;
      const previous = this.#entries.get(name);
      if (c.type === 'DELETED') this.#entries.delete(name);
      else this.#entries.set(name, derive(c.resource));
      this.onChange?.(previous);
    });
  }

  get(name: string): ServiceEntry | undefined {
    return this.#entries.get(name);
  }

  /** Services whose upstream is served by `octelium connect` of this User. */
  servedBy(user: string): ServiceEntry[] {
    return [...this.#entries.values()].filter((e) => e.spec.config?.upstream?.user === user);
  }

  close(): void {
    this.#unwatch();
  }
}
