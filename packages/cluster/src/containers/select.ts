import type Docker from 'dockerode';
import type { DockerRuntimeOptions } from './docker/docker-runtime.js';
import type { ContainerRuntime } from './runtime.js';

export type RuntimeChoice = 'docker' | 'kubernetes' | 'none';

export interface SelectedRuntime {
  runtime?: ContainerRuntime;
  /** One sentence for the startup line: which runtime and why. */
  reason: string;
}

async function pingDocker(docker: Docker): Promise<{ ok: true; version: string } | { ok: false; error: string }> {
  try {
    await docker.ping();
    const v = (await docker.version()) as { Version?: string };
    return { ok: true, version: v.Version ?? '?' };
  } catch (err) {
    return { ok: false, error: (err as { code?: string }).code ?? (err as Error).message };
  }
}

/**
 * design.md §8: `--container-runtime docker|kubernetes|none`; without the flag, Docker when its socket answers, else none.
 */
export async function selectRuntime(choice: RuntimeChoice | undefined, clusterId: string, opts: { docker?: Partial<DockerRuntimeOptions> } = {}): Promise<SelectedRuntime> {
  if (choice === 'none') return { reason: 'container runtime: none (--container-runtime none); Services with upstream.container stay Pending and get 503' };
  if (choice === 'kubernetes') {
    // Loaded only when asked for: @kubernetes/client-node is large and most clusters run Docker or nothing.
    const { KubernetesRuntime } = await import('./kubernetes/kube-runtime.js');
    const runtime = KubernetesRuntime.fromEnvironment(clusterId);
    return { runtime, reason: `container runtime: kubernetes (--container-runtime kubernetes; ${runtime.describe()}; not yet verified against a live cluster)` };
  }
  // Loaded here, not at import: dockerode and what it pulls in (ssh2, grpc-js) are ~130 ms of every start otherwise.
  const [{ default: DockerClient }, { DockerRuntime, dockerAddress }] = await Promise.all([import('dockerode'), import('./docker/docker-runtime.js')]);
  const docker = opts.docker?.docker ?? new DockerClient();
  const ping = await pingDocker(docker);
  const where = dockerAddress(docker);
  if (choice === 'docker') {
    return {
      runtime: new DockerRuntime({ ...opts.docker, docker, clusterId }),
      reason: ping.ok
        ? `container runtime: docker ${ping.version} at ${where} (--container-runtime docker)`
        : `container runtime: docker at ${where} (--container-runtime docker), which does not answer yet (${ping.error}); containers start once it does`,
    };
  }
  if (ping.ok) return { runtime: new DockerRuntime({ ...opts.docker, docker, clusterId }), reason: `container runtime: docker ${ping.version} (the Docker socket ${where} answers)` };
  return { reason: `container runtime: none (no Docker daemon answers at ${where}: ${ping.error}); Services with upstream.container stay Pending and get 503 — start Docker or pass --container-runtime` };
}
