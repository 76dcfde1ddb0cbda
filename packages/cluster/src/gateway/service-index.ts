import { durationMs, type Plugin, type Resource, type ServiceSpec } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;

/** Per-Service data derived once per resourceVersion, so the request path only does map lookups. */
export interface ServiceEntry {
  service: Resource;
  spec: ServiceSpec;
  /** Enabled plugins of `spec.config` in execution order (phase, then written order). */
  plugins: Plugin[];
  /** The same for each `dynamicConfig.configs[]` that sets `http`, by config name. */
  dynamicPlugins: Map<string, Plugin[]>;
  timeoutMs: number;
  /** Stable key for per-version caches (compiled Lua, upstream OAuth2 tokens …). */
  versionKey: string;
}

function ordered(plugins: Plugin[] | undefined): Plugin[] {
  return (plugins ?? [])
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => !p.isDisabled)
    .sort((a, b) => (a.p.phase ?? 0) - (b.p.phase ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

function derive(service: Resource): ServiceEntry {
  const spec = service.spec as ServiceSpec;
  const dynamicPlugins = new Map<string, Plugin[]>();
  for (const c of spec.dynamicConfig?.configs ?? []) if (c.http) dynamicPlugins.set(c.name, ordered(c.http.plugins));
  return {
    service, spec, plugins: ordered(spec.config?.http?.plugins), dynamicPlugins,
    timeoutMs: durationMs(spec.config?.http?.timeout, DEFAULT_UPSTREAM_TIMEOUT_MS),
    versionKey: `${service.metadata.uid}@${service.metadata.resourceVersion}`,
  };
}

/**
 * The plugins that run for a request: those of the dynamic config a rule picked when that config sets `http`
 * (a dynamic config replaces the parts it sets, plugins included), else those of `spec.config`.
 */
export function pluginsFor(entry: ServiceEntry, dynamicConfigName: string | undefined): Plugin[] {
  return (dynamicConfigName !== undefined && entry.dynamicPlugins.get(dynamicConfigName)) || entry.plugins;
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
