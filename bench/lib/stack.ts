/**
 * Everything a request/response comparison needs, each in its own process: the upstream, the cluster with the
 * scenario Services, nginx / haproxy (when available), the Node proxy floor, and the tunnel agent for (d).
 */
import { join } from 'node:path';
import { setupGateway, spawnClusterProc, startTunnelAgent, waitUntilRoutable, type ClusterProc } from './cluster.js';
import { BASE_HEADERS, type Target } from './http-bench.js';
import { ensureBinary, startHaproxy, startNginx, type Peer } from './peers.js';
import { startChild, type Child } from './procs.js';
import { REPO_ROOT, log } from './util.js';

export async function startUpstream(extra: string[] = []): Promise<{ child: Child; ports: number[]; sdkPort?: number; url: string }> {
  const child = startChild('upstream', join(REPO_ROOT, 'bench/lib/upstream-server.ts'), extra, { ipc: true, nofile: 65536 });
  const ready = await child.message<{ ports: number[]; sdkPort?: number }>('ready');
  return { child, ports: ready.ports, sdkPort: ready.sdkPort, url: `http://127.0.0.1:${ready.ports[0]}` };
}

export async function startNodeProxy(upstreamPort: number, workers = 1, unlimited = false): Promise<{ child: Child; port: number }> {
  const args = [String(upstreamPort), '--workers', String(workers), ...(unlimited ? ['--unlimited'] : [])];
  const child = startChild(`node-proxy${workers > 1 ? `x${workers}` : ''}`, join(REPO_ROOT, 'bench/lib/node-proxy.ts'), args, { ipc: true, nofile: 1 << 20 });
  const { port } = await child.message<{ port: number }>('ready');
  return { child, port };
}

/** An MCP session on the SDK server (initialize + initialized), for tools/call with `mcp-session-id`. */
export async function sdkSession(base: string): Promise<Record<string, string>> {
  const headers = { ...BASE_HEADERS, 'mcp-protocol-version': '2025-06-18' };
  const init = await fetch(`${base}/mcp`, {
    method: 'POST', headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
  });
  const sid = init.headers.get('mcp-session-id');
  await init.text();
  if (!sid) throw new Error(`SDK server initialize: no session id (${init.status})`);
  const s = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await (await fetch(`${base}/mcp`, { method: 'POST', headers: { ...headers, ...s }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
  return s;
}

export interface StackOptions {
  nginx?: boolean;
  haproxy?: boolean;
  nodeProxy?: boolean;
  /** Also the Node floor proxy with 2 worker processes (node:cluster) — what using both cores would buy. */
  nodeProxy2?: boolean;
  /** Scenarios of our gateway to include. */
  scenarios: Array<'a' | 'b' | 'c' | 'd'>;
  install?: boolean;
  sdk?: boolean;
  /** Run the built cluster (dist/, plain node: what ships) instead of its sources under tsx. */
  compiled?: boolean;
}

export interface Stack {
  targets: Target[];
  cluster: ClusterProc;
  upstream: Awaited<ReturnType<typeof startUpstream>>;
  token: string;
  /** Why a peer or scenario is missing from `targets`. */
  skipped: Record<string, string>;
  peers: Record<string, string>;
  /** Targets against the MCP SDK server (when `sdk`). */
  sdkTargets: Target[];
  /** The tunnel agent process of scenario (d), when it connected (IPC `stats`). */
  agent?: Child;
  stop(): Promise<void>;
}

export const SCENARIO_LABELS = {
  a: 'gateway (a) no policy',
  b: 'gateway (b) seed policy+buffer+CEL',
  c: 'gateway (c) (b) + seed Lua plugin',
  d: 'gateway (d) (a) via connect tunnel',
} as const;

export async function startStack(o: StackOptions): Promise<Stack> {
  const upstream = await startUpstream(o.sdk ? ['--sdk'] : []);
  const cluster = await spawnClusterProc({ compiled: o.compiled });
  const gw = await setupGateway(cluster, upstream.url);
  const auth = { authorization: `Bearer ${gw.token}` };
  const skipped: Record<string, string> = {};
  const peers: Record<string, string> = { node: process.version };
  const stops: Array<() => Promise<unknown>> = [];
  const targets: Target[] = [{ id: 'direct', label: 'direct', url: `${upstream.url}/mcp`, headers: auth, expectText: '2004' }];

  const peer = async (name: 'nginx' | 'haproxy', start: (bin: string) => Promise<Peer>) => {
    const bin = ensureBinary(name, name, o.install !== false);
    if (!bin.path) {
      skipped[name] = bin.reason!;
      log(`${name} skipped: ${bin.reason}`);
      return;
    }
    try {
      const p = await start(bin.path);
      peers[name] = /[\d.]+/.exec(p.version.replace(/^[^\d]*/, ''))?.[0] ?? p.version;
      stops.push(() => p.stop());
      targets.push({ id: name, label: `${name} ${/[\d.]+/.exec(p.version)?.[0] ?? ''} (1 worker)`, url: `http://127.0.0.1:${p.port}/mcp`, headers: auth, expectText: '2004', pids: () => [p.child.pid] });
    } catch (err) {
      skipped[name] = (err as Error).message.split('\n')[0];
      log(`${name} skipped: ${skipped[name]}`);
    }
  };
  if (o.nginx !== false) await peer('nginx', (bin) => startNginx(bin, upstream.ports[0]));
  if (o.haproxy) await peer('haproxy', (bin) => startHaproxy(bin, upstream.ports[0]));
  if (o.nodeProxy !== false) {
    const np = await startNodeProxy(upstream.ports[0]);
    stops.push(() => np.child.stop());
    targets.push({ id: 'node-proxy', label: 'node:http+undici proxy floor', url: `http://127.0.0.1:${np.port}/mcp`, headers: auth, expectText: '2004', pids: () => [np.child.pid] });
  }
  if (o.nodeProxy2) {
    const np2 = await startNodeProxy(upstream.ports[0], 2);
    stops.push(() => np2.child.stop());
    targets.push({ id: 'node-proxy-2w', label: 'node floor, 2 worker processes', url: `http://127.0.0.1:${np2.port}/mcp`, headers: auth, expectText: '2004', pids: () => [np2.child.pid] });
  }

  let agent: Child | undefined;
  for (const s of o.scenarios) {
    const url = `${cluster.url}/svc/${gw.services[s]}/mcp`;
    if (s === 'd') {
      const r = await startTunnelAgent(cluster, gw.services.d);
      if (!r.child) {
        skipped.d = `PENDING — tunnel not available in this build: ${r.pending}`;
        log(`scenario (d) skipped: ${skipped.d}`);
        continue;
      }
      agent = r.child;
      stops.push(() => r.child!.stop());
    }
    await waitUntilRoutable(url, gw.token);
    targets.push({
      id: s, label: SCENARIO_LABELS[s], url, headers: auth, expectText: s === 'c' ? '1004' : '2004',
      pids: () => (s === 'd' && agent ? [cluster.child.pid, agent.pid] : [cluster.child.pid]),
    });
  }

  const sdkTargets: Target[] = [];
  if (o.sdk && upstream.sdkPort) {
    const base = `http://127.0.0.1:${upstream.sdkPort}`;
    await cluster.api.apply({ resources: [{ apiVersion: 'core/v1', kind: 'Service', metadata: { name: 'bench-sdk' }, spec: { mode: 'HTTP', isPublic: true, config: { upstream: { url: base } } } }] });
    const session = await sdkSession(base);
    sdkTargets.push(
      { id: 'direct', label: 'direct (MCP SDK server)', url: `${base}/mcp`, headers: { ...auth, ...session }, expectText: '2004' },
      { id: 'a', label: 'gateway (a) → MCP SDK server', url: `${cluster.url}/svc/bench-sdk/mcp`, headers: { ...auth, ...session }, expectText: '2004', pids: () => [cluster.child.pid] },
    );
    await waitUntilRoutable(sdkTargets[1].url, gw.token);
  }

  return {
    targets, cluster, upstream, token: gw.token, skipped, peers, sdkTargets, agent,
    stop: async () => {
      for (const s of stops.reverse()) await s().catch(() => undefined);
      await cluster.stop();
      await upstream.child.stop();
    },
  };
}
