import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import type { ReplicaEndpoint, WorkloadView } from '../endpoints.js';
import type { ContainerRuntime, EnsureContext, LogLine, LogOptions, ObservedWorkload } from '../runtime.js';
import { CLUSTER_LABEL, CONFIG_LABEL, HASH_LABEL, SERVICE_LABEL, UID_LABEL, type Workload } from '../workload.js';
import { containerCreateOptions, containerEnv, portKey, RESTART_POLICY, STOP_TIMEOUT_S } from './create-options.js';
import { followContainer, demuxBuffer, merge, tailLogs } from './logs.js';
import { ensureImage } from './pull.js';
import { waitReady } from './readiness.js';

export interface DockerRuntimeOptions {
  /** A dockerode client; default: DOCKER_HOST or /var/run/docker.sock. */
  docker?: Docker;
  /** This cluster's id (octelium.io/cluster label): only containers carrying it are listed, adopted or removed. */
  clusterId: string;
  /** How long a new replica may take to answer its first request (default 60 s). */
  readyTimeoutMs?: number;
}

type Summary = Docker.ContainerInfo;

const short = (id: string) => id.slice(0, 12);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EPIPE', 'ECONNRESET', 'EACCES']);

/** Where the Docker client talks, for messages. */
export function dockerAddress(docker: Docker): string {
  const m = docker.modem as unknown as { socketPath?: string | (() => unknown); host?: string; port?: number };
  // docker-modem keeps a function there when no socket was configured: it finds the default one at connect time.
  if (typeof m.socketPath === 'function') return 'the default Docker socket (/var/run/docker.sock)';
  return m.socketPath ? `unix://${m.socketPath}` : `tcp://${m.host}:${m.port}`;
}

/**
 * Managed containers on one machine through the Docker Engine API (dockerode): one container per replica, published
 * on 127.0.0.1 on an ephemeral port, labelled octelium.io/service=<svc>.<ns>.
 */
export class DockerRuntime implements ContainerRuntime {
  readonly name = 'docker' as const;
  readonly docker: Docker;
  readonly #readyTimeoutMs: number;
  /** Container id → the StartedAt at which it passed readiness (a restart by Docker makes it probe again). */
  readonly #ready = new Map<string, string>();
  readonly #events = new Set<NodeJS.ReadableStream>();
  #closed = false;

  readonly clusterId: string;

  constructor(opts: DockerRuntimeOptions) {
    this.clusterId = opts.clusterId;
    this.docker = opts.docker ?? new Docker();
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  }

  /** Rewrites "socket refused" errors into one clear sentence, keeping `code` (the reconciler stops routing on it). */
  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!UNREACHABLE.has(code)) throw err;
      throw Object.assign(new Error(`the Docker daemon does not answer at ${dockerAddress(this.docker)} (${code})`), { code });
    }
  }

  async #containers(labels: string[]): Promise<Summary[]> {
    return this.docker.listContainers({ all: true, filters: { label: [`${CLUSTER_LABEL}=${this.clusterId}`, ...labels] } });
  }

  ensure(w: Workload, ctx: EnsureContext): Promise<WorkloadView> {
    return this.#guard(() => this.#ensure(w, ctx));
  }

  async #ensure(w: Workload, ctx: EnsureContext): Promise<WorkloadView> {
    const all = await this.#containers([`${SERVICE_LABEL}=${w.serviceLabel}`, `${CONFIG_LABEL}=${w.config}`]);
    const isCurrent = (c: Summary) => c.Labels[HASH_LABEL] === w.hash && c.Labels[UID_LABEL] === w.serviceUid;
    const current = all.filter(isCurrent);
    const old = all.filter((c) => !isCurrent(c));
    const notes: string[] = [];

    // Heal: replicas that stopped for good (Docker gave up restarting them, or someone killed or removed them).
    for (const c of current) {
      if (c.State === 'running' || c.State === 'restarting') continue;
      notes.push(`replica ${short(c.Id)} ${c.Status.toLowerCase()}, replaced`);
      await this.#remove(c.Id, 0);
    }
    const live = current.filter((c) => c.State === 'running' || c.State === 'restarting');
    const ready = new Map<string, ReplicaEndpoint>();
    const probes = await Promise.allSettled(live.map(async (c) => ready.set(c.Id, await this.#readyEndpoint(w, c.Id, ctx.signal))));
    // Adopted or restarted replicas that do not come back are replaced like dead ones.
    for (const [i, p] of probes.entries()) {
      if (p.status === 'fulfilled') continue;
      notes.push(`replica ${short(live[i].Id)} not ready (${(p.reason as Error).message}), replaced`);
      await this.#remove(live[i].Id, 0);
    }
    const kept = live.filter((c) => ready.has(c.Id));
    // Old replicas serve until the new ones are ready (design.md §8).
    const oldReady = new Map<string, ReplicaEndpoint>();
    await Promise.allSettled(old.filter((c) => c.State === 'running').map(async (c) => oldReady.set(c.Id, await this.#readyEndpoint(w, c.Id, ctx.signal, 2_000))));
    const view = (state: WorkloadView['state'], message: string, eps: ReplicaEndpoint[]): WorkloadView =>
      ({ state, replicas: w.replicas, ready: Math.min(ready.size, w.replicas), message, endpoints: eps });
    const serving = () => [...ready.values(), ...(ready.size >= w.replicas ? [] : oldReady.values())];

    const need = w.replicas - kept.length;
    if (need > 0) {
      ctx.publish(view('Pending', `starting ${need} replica${need > 1 ? 's' : ''}`, serving()));
      await ensureImage(this.docker, w, ctx.secret);
      const env = containerEnv(w, ctx.secret);
      const started = await Promise.allSettled(Array.from({ length: need }, () => this.#startReplica(w, env, ctx.signal)));
      const errors: string[] = [];
      for (const s of started) {
        if (s.status === 'fulfilled') ready.set(s.value.id, s.value);
        else errors.push((s.reason as Error).message);
      }
      if (errors.length) {
        ctx.publish(view('Failed', errors[0], serving()));
        throw new Error([...new Set(errors)].join('; '));
      }
    } else if (need < 0) {
      // Scale down: stop routing to the surplus first, then let their requests finish.
      const surplus = kept.slice(w.replicas).map((c) => c.Id);
      for (const id of surplus) ready.delete(id);
      ctx.publish(view('Running', '', [...ready.values()]));
      await ctx.drain(surplus);
      for (const id of surplus) await this.#remove(id);
    }
    // Every replica of the spec is ready: route to them only, let the old ones finish their requests, remove them.
    ctx.publish(view('Running', '', [...ready.values()]));
    if (old.length) {
      await ctx.drain(old.map((c) => c.Id));
      for (const c of old) await this.#remove(c.Id);
    }
    return view('Running', notes.join('; '), [...ready.values()]);
  }

  /** Inspects a running replica and returns its endpoint once it is ready (probing only when it was not yet). */
  async #readyEndpoint(w: Workload, id: string, signal: AbortSignal, timeoutMs = this.#readyTimeoutMs): Promise<ReplicaEndpoint> {
    const c = this.docker.getContainer(id);
    const info = await c.inspect();
    const startedAt = info.State.StartedAt;
    const port = Number(info.NetworkSettings.Ports?.[portKey(w)]?.[0]?.HostPort);
    if (this.#ready.get(id) === startedAt && info.State.Running && port) return { id, url: `http://127.0.0.1:${port}` };
    const restarts = info.RestartCount;
    await waitReady(port, {
      timeoutMs, signal,
      alive: async () => {
        const now = await c.inspect();
        if (!now.State.Running || now.State.Restarting || now.RestartCount !== restarts || !port) throw await this.#exitError(w, c, now);
      },
    }).catch(async (err) => {
      // Re-inspect once: a server that died while being probed says more than "no answer".
      const now = await c.inspect().catch(() => undefined);
      if (now && (!now.State.Running || now.State.Restarting || now.RestartCount !== restarts)) throw await this.#exitError(w, c, now);
      throw new Error(`port ${w.container.port} ${err.message}`);
    });
    this.#ready.set(id, startedAt);
    return { id, url: `http://127.0.0.1:${port}` };
  }

  async #exitError(w: Workload, c: Docker.Container, info: Docker.ContainerInspectInfo): Promise<Error> {
    if (info.State.OOMKilled) {
      return new Error(`container was killed for using more memory than its limit (${w.container.resourceLimit?.memory?.megabytes ?? 512} MB); raise resourceLimit.memory.megabytes`);
    }
    const lines = await tailLogs(c, 5).catch(() => []);
    const code = info.State.ExitCode;
    return new Error(`container exited right after it started (exit code ${code}${info.State.Error ? `, ${info.State.Error}` : ''})${lines.length ? `; last output: ${lines.join(' | ').slice(0, 500)}` : ''}`);
  }

  /** Creates, starts and waits for one replica; a replica that does not become ready is removed (nothing left behind). */
  async #startReplica(w: Workload, env: string[], signal: AbortSignal): Promise<ReplicaEndpoint> {
    const name = `octelium-${w.serviceLabel.replace(/\./g, '-')}-${w.config}-${w.hash.slice(0, 8)}-${randomBytes(3).toString('hex')}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
    let c: Docker.Container | undefined;
    try {
      c = await this.docker.createContainer(containerCreateOptions(w, name, env, this.clusterId));
      await c.start();
      const endpoint = await this.#readyEndpoint(w, c.id, signal);
      await c.update({ RestartPolicy: RESTART_POLICY });
      return endpoint;
    } catch (err) {
      if (c) await this.#remove(c.id, 0).catch(() => undefined);
      throw err;
    }
  }

  async #remove(id: string, stopTimeoutS = STOP_TIMEOUT_S): Promise<void> {
    this.#ready.delete(id);
    const c = this.docker.getContainer(id);
    if (stopTimeoutS > 0) await c.stop({ t: stopTimeoutS }).catch(() => undefined);
    await c.remove({ force: true, v: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404 && err.statusCode !== 409) throw err;
    });
  }

  remove(serviceLabel: string, config?: string): Promise<void> {
    return this.#guard(async () => {
      const labels = [`${SERVICE_LABEL}=${serviceLabel}`, ...(config ? [`${CONFIG_LABEL}=${config}`] : [])];
      const list = await this.#containers(labels);
      await Promise.all(list.map((c) => this.#remove(c.Id)));
    });
  }

  list(): Promise<ObservedWorkload[]> {
    return this.#guard(async () => {
      const groups = new Map<string, ObservedWorkload>();
      for (const c of await this.#containers([SERVICE_LABEL])) {
        const key = `${c.Labels[SERVICE_LABEL]}/${c.Labels[CONFIG_LABEL] ?? ''}`;
        const g = groups.get(key) ?? { serviceLabel: c.Labels[SERVICE_LABEL], serviceUid: c.Labels[UID_LABEL] ?? '', config: c.Labels[CONFIG_LABEL] ?? '', hash: c.Labels[HASH_LABEL] ?? '', ids: [] };
        g.ids.push(c.Id);
        groups.set(key, g);
      }
      return [...groups.values()];
    });
  }

  async *logs(serviceLabel: string, opts: LogOptions): AsyncIterable<LogLine> {
    const list = (await this.#guard(() => this.#containers([`${SERVICE_LABEL}=${serviceLabel}`]))).sort((a, b) => a.Created - b.Created);
    const replica = (c: Summary) => (c.Names[0] ?? c.Id).replace(/^\//, '');
    if (!opts.follow) {
      for (const c of list) {
        const buf = (await this.docker.getContainer(c.Id).logs({ stdout: true, stderr: true, follow: false, tail: opts.tail ?? 'all' } as never)) as unknown as Buffer;
        yield* demuxBuffer(buf, replica(c));
      }
      return;
    }
    yield* merge(list.map((c) => followContainer(this.docker, this.docker.getContainer(c.Id), replica(c), opts.tail, opts.signal)));
  }

  /** Docker events for our containers (die, destroy, start, oom); reconnects while the runtime is open. */
  watch(onChange: (serviceLabel: string) => void): () => void {
    let stopped = false;
    let delay = 1_000;
    const connect = async () => {
      while (!stopped && !this.#closed) {
        try {
          const stream = (await this.docker.getEvents({ filters: { type: ['container'], label: [`${CLUSTER_LABEL}=${this.clusterId}`], event: ['die', 'destroy', 'start', 'oom'] } })) as NodeJS.ReadableStream;
          this.#events.add(stream);
          delay = 1_000;
          let buf = '';
          await new Promise<void>((resolve) => {
            stream.on('data', (chunk: Buffer) => {
              buf += chunk.toString();
              let i;
              while ((i = buf.indexOf('\n')) >= 0) {
                const line = buf.slice(0, i);
                buf = buf.slice(i + 1);
                try {
                  const label = (JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } }).Actor?.Attributes?.[SERVICE_LABEL];
                  if (label) onChange(label);
                } catch { /* a partial or foreign line: ignore */ }
              }
            });
            stream.once('end', resolve);
            stream.once('close', resolve);
            stream.once('error', () => resolve());
          });
          this.#events.delete(stream);
        } catch { /* daemon down: retry below */ }
        if (stopped || this.#closed) return;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 30_000);
      }
    };
    void connect();
    return () => {
      stopped = true;
      for (const s of this.#events) (s as unknown as { destroy?: () => void }).destroy?.();
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#events) (s as unknown as { destroy?: () => void }).destroy?.();
  }
}
