import type { ContainerCreateOptions } from 'dockerode';
import { CLUSTER_LABEL, CONFIG_LABEL, HASH_LABEL, SERVICE_LABEL, UID_LABEL, type Workload } from '../workload.js';
import type { SecretReader } from '../runtime.js';

/** Octelium's limits when `resourceLimit` leaves one out (nocturne's getK8sUpstreamPod: 1000m CPU, 512 Mi). */
export const DEFAULT_CPU_MILLICORES = 1000;
export const DEFAULT_MEMORY_MEGABYTES = 512;
/** Seconds between SIGTERM and SIGKILL when a replica is stopped. */
export const STOP_TIMEOUT_S = 5;
/** Docker restarts a crashed ready replica itself, with its own doubling delay, 5 times; then the reconciler replaces it. */
export const RESTART_POLICY = { Name: 'on-failure', MaximumRetryCount: 5 };

export const portKey = (w: Workload) => `${w.container.port}/tcp`;

/** `env` with `fromSecret` resolved; values never leave this process except to the Docker daemon. */
export function containerEnv(w: Workload, secret: SecretReader): string[] {
  return (w.container.env ?? []).map((e) => `${e.name}=${e.fromSecret ? secret(e.fromSecret) : e.value ?? ''}`);
}

/** The Docker Engine API body for one replica of `w` (pure: unit-tested without a daemon). */
export function containerCreateOptions(w: Workload, name: string, env: string[], clusterId: string): ContainerCreateOptions {
  const c = w.container;
  const millicores = c.resourceLimit?.cpu?.millicores ?? DEFAULT_CPU_MILLICORES;
  const memory = (c.resourceLimit?.memory?.megabytes ?? DEFAULT_MEMORY_MEGABYTES) * 1024 * 1024;
  return {
    name,
    Image: c.image,
    // Kubernetes semantics, as Octelium uses them: `command` replaces the ENTRYPOINT, `args` the CMD.
    ...(c.command ? { Entrypoint: c.command } : {}),
    ...(c.args ? { Cmd: c.args } : {}),
    Env: env,
    Labels: { [CLUSTER_LABEL]: clusterId, [SERVICE_LABEL]: w.serviceLabel, [CONFIG_LABEL]: w.config, [HASH_LABEL]: w.hash, [UID_LABEL]: w.serviceUid },
    ExposedPorts: { [portKey(w)]: {} },
    StopTimeout: STOP_TIMEOUT_S,
    HostConfig: {
      // Only the gateway on this host reaches a replica: loopback, an ephemeral port per replica.
      PortBindings: { [portKey(w)]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
      NanoCpus: millicores * 1_000_000,
      Memory: memory,
      // No swap beyond the memory limit, so the limit means what it says.
      MemorySwap: memory,
      // No restarts until the replica was ready once (docker-runtime.ts switches to RESTART_POLICY then): a server
      // that exits at once stays exited with its real exit code instead of looping through restarts.
      RestartPolicy: { Name: 'no' },
      // A tiny init as PID 1 forwards SIGTERM and reaps zombies (a bare `node` as PID 1 ignores SIGTERM).
      Init: true,
      SecurityOpt: ['no-new-privileges'],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
}
