/**
 * Replicas of one cluster as real processes on one PostgreSQL (docs/scaling.md), and a TCP load balancer in front
 * of them: what a Kubernetes Service does for `octelium connect --domain`, small enough to live in a test.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ApiClient, type Resource } from '@octelium-ts/shared';
import { spawnCluster, tempDir, type ClusterProcess } from './testing.js';

export interface Replica extends ClusterProcess {
  /** This replica's own address, `localhost:PORT` (the cluster's domain names the load balancer, not a replica). */
  addr: string;
  url: string;
  api(token: string): ApiClient;
}

/** `octelium-cluster start --store URL --domain DOMAIN --port 0` in its own data dir. */
export async function startReplica(storeURL: string, domain: string, extraArgs: string[] = []): Promise<Replica> {
  const proc = await spawnCluster(tempDir('octelium-replica-'), ['--store', storeURL, '--domain', domain, ...extraArgs]);
  // cluster.json comes first; the bootstrap token (if this replica made it) is printed before the listening line.
  const deadline = Date.now() + 20_000;
  while (!/octelium-cluster listening on/.test(proc.output())) {
    if (Date.now() > deadline || proc.proc.exitCode !== null) throw new Error(`replica did not report listening:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const addr = `localhost:${proc.info.port}`;
  return {
    ...proc, addr, url: `http://${addr}`,
    api(token: string) {
      const api = new ApiClient({ domain: addr });
      api.accessToken = token;
      return api;
    },
  };
}

export interface Balancer { port: number; addr: string; close(): Promise<void> }

/**
 * Round-robin TCP balancer over `targets()` (ports on 127.0.0.1): a connection goes to the next target, and to the
 * one after when that refuses (a dead replica), as a load balancer with health checks would.
 */
export async function startBalancer(targets: () => number[]): Promise<Balancer> {
  let rr = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const list = targets();
    const tryAt = (i: number) => {
      if (i >= list.length) return client.destroy();
      const upstream = createConnection({ host: '127.0.0.1', port: list[(rr + i) % list.length] });
      upstream.once('error', () => tryAt(i + 1));
      upstream.once('connect', () => {
        rr = (rr + i + 1) % Math.max(list.length, 1);
        upstream.removeAllListeners('error');
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    tryAt(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port, addr: `localhost:${port}`,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** Polls `fn` until it returns a truthy value or `ms` pass; returns the value and how long it took. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 5000, stepMs = 25): Promise<{ value: T; tookMs: number }> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return { value: v, tookMs: Date.now() - t0 };
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const svc = (name: string, spec: Record<string, unknown>, resourceVersion?: string): Resource => ({
  apiVersion: 'core/v1', kind: 'Service', metadata: { name, ...(resourceVersion ? { resourceVersion } : {}) }, spec: { mode: 'HTTP', isPublic: true, ...spec },
});
