/**
 * The cluster under test as a child process (`octelium-cluster start`: packages/cluster/src/bin.ts through tsx, or
 * with `compiled` the built dist/ under plain node, as the npm package runs it), plus the Services of the gateway scenarios:
 *   (a) no policy            — Service with just an upstream (authenticated user, default allow)
 *   (b) seed 04              — request buffering + JSON bodyMap + the seed's CEL policy (5 conditions)
 *   (c) seed 04 + seed 05    — (b) plus the seed Lua plugin, unchanged, gated by a tools/call condition
 *   (d) tunnel               — (a) with `upstream.user`: served by an `octelium connect` agent in another process
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, parseManifests, type Resource } from '@octelium-ts/shared';
import { SEED_DIR, oauth2Token, service, user } from '@octelium-ts/cluster/testing';
import { startChild, type Child } from './procs.js';
import { REPO_ROOT, sleep, waitFor } from './util.js';

export interface ClusterProc {
  child: Child;
  url: string;
  port: number;
  domain: string;
  dataDir: string;
  api: ApiClient;
  stop(): Promise<void>;
}

export const CLUSTER_ENTRY = join(REPO_ROOT, 'packages/cluster/src/bin.ts');
export const COMPILED_CLUSTER_ENTRY = join(REPO_ROOT, 'packages/cluster/dist/bin.js');

let built = false;
/** dist/ as the sources are now (esbuild, ~0.3 s), once per bench process: a stale build would measure old code. */
function buildOnce(): void {
  if (built) return;
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/build.mjs failed:\n${r.stdout}${r.stderr}`);
  built = true;
}

/**
 * `compiled`: run the built cluster (dist/, plain node: what ships) instead of the TypeScript sources under tsx.
 * Per-object figures differ: tsx keeps function names by defining `name` on every closure, which gives each
 * per-request closure its own property array (about 0.25 KB), so memory per held request reads higher under tsx.
 */
export async function spawnClusterProc(opts: { dataDir?: string; nodeArgs?: string[]; args?: string[]; compiled?: boolean; nofile?: number; echo?: boolean; keepDataDir?: boolean } = {}): Promise<ClusterProc> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'octelium-bench-cluster-'));
  const info = join(dataDir, 'cluster.json');
  rmSync(info, { force: true });
  const args = ['start', '--data-dir', dataDir, '--port', '0', '--domain', '127.0.0.1', ...(opts.args ?? [])];
  if (opts.compiled) buildOnce();
  const child = opts.compiled
    ? startChild('cluster', COMPILED_CLUSTER_ENTRY, [...(opts.nodeArgs ?? []), COMPILED_CLUSTER_ENTRY, ...args], { bin: process.execPath, nofile: opts.nofile, echo: opts.echo })
    : startChild('cluster', CLUSTER_ENTRY, args, { nodeArgs: opts.nodeArgs, nofile: opts.nofile, echo: opts.echo });
  await waitFor('cluster.json', () => {
    if (child.proc.exitCode !== null) throw new Error(`cluster exited (${child.proc.exitCode}):\n${child.output()}`);
    return existsSync(info) ? true : undefined;
  }, 60_000, 20);
  const { url, port, domain } = JSON.parse(readFileSync(info, 'utf8')) as { url: string; port: number; domain: string };
  const api = new ApiClient({ domain });
  api.accessToken = (await api.login(readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim())).accessToken;
  return {
    child, url, port, domain, dataDir, api,
    stop: async () => {
      await child.stop('SIGTERM', 15_000);
      if (!opts.dataDir && !opts.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Doc = Resource & { spec: { config: { upstream: Record<string, unknown>; http?: Record<string, unknown> }; authorization?: unknown } };

/** A seed manifest as `octeliumctl apply` would send it (parsed and validated, defaults filled in). */
function seed(file: string): Doc {
  const path = join(SEED_DIR, file);
  const { docs, errors } = parseManifests(readFileSync(path, 'utf8'), path);
  if (errors.length || docs.length !== 1) throw new Error(`seed ${file}: ${JSON.stringify(errors)}`);
  return structuredClone(docs[0].resource) as Doc;
}

/** Scenario (b): seed 04 unchanged except its name and upstream URL. */
export function seedPolicyService(name: string, upstreamURL: string): Resource {
  const s = seed('04-l7-policy.yaml');
  s.metadata.name = name;
  s.spec.config.upstream.url = upstreamURL;
  return s;
}

/**
 * Scenario (c): seed 04 plus seed 05's plugin (script unchanged). As in packages/cluster/test/plugins.test.ts,
 * the plugin is gated to tools/call (it indexes params.arguments), over seed 04's buffered JSON body.
 */
export function seedLuaService(name: string, upstreamURL: string): Resource {
  const s = seedPolicyService(name, upstreamURL) as Doc;
  const lua = seed('05-lua-plugin.yaml');
  const plugins = (lua.spec.config.http as { plugins: Array<Record<string, unknown>> }).plugins;
  plugins[0].condition = { match: 'ctx.request.http.bodyMap.method == "tools/call"' };
  s.spec.config.http = { ...s.spec.config.http, plugins };
  return s;
}

export const BENCH_USER = 'bench';
export const AGENT_USER = 'bench-agent';

export interface GatewaySetup {
  token: string;
  services: { a: string; b: string; c: string; d: string };
}

/** Users, a client-credentials JWT for the load generator, and the Services of (a)–(d). */
export async function setupGateway(c: ClusterProc, upstreamURL: string, scenarios: Array<'a' | 'b' | 'c' | 'd'> = ['a', 'b', 'c', 'd']): Promise<GatewaySetup> {
  const services = { a: 'bench-a', b: 'bench-b', c: 'bench-c', d: 'bench-d' };
  const make = {
    a: () => service(services.a, { config: { upstream: { url: upstreamURL } } }),
    b: () => seedPolicyService(services.b, upstreamURL),
    c: () => seedLuaService(services.c, upstreamURL),
    d: () => service(services.d, { config: { upstream: { url: upstreamURL, user: AGENT_USER } } }),
  };
  await c.api.apply({
    resources: [
      user(BENCH_USER, { email: 'bench@example.com' }),
      user(AGENT_USER, { type: 'HUMAN', email: 'agent@example.com' }),
      ...scenarios.map((s) => make[s]()),
    ],
  });
  const token = await oauth2Token(c.api, c.url, BENCH_USER);
  return { token, services };
}

/** A Session access token for the tunnel agent's User (what `octelium login` gives `octelium connect`). */
export async function agentSessionToken(c: ClusterProc): Promise<string> {
  const { token } = await c.api.createCredential({
    apiVersion: 'core/v1', kind: 'Credential', metadata: { name: `${AGENT_USER}-auth-${Date.now().toString(36)}` },
    spec: { type: 'AUTH_TOKEN', user: AGENT_USER },
  });
  const login = new ApiClient({ domain: c.domain });
  return (await login.login(token.authenticationToken!)).accessToken;
}

/** Starts the connect agent (another process) serving Service `svc`; resolves once connected, or with why not. */
export async function startTunnelAgent(c: ClusterProc, svc: string, timeoutMs = 8_000, nodeArgs?: string[]): Promise<{ child?: Child; pending?: string }> {
  const accessToken = await agentSessionToken(c);
  const child = startChild('agent', join(REPO_ROOT, 'bench/lib/agent-proc.ts'), [], {
    ipc: true, nodeArgs, env: { OCT_BENCH_DOMAIN: c.domain, OCT_BENCH_TOKEN: accessToken, OCT_BENCH_SERVE: svc },
  });
  try {
    const m = await child.message<{ connected: boolean; state: Record<string, unknown> }>('ready', timeoutMs + 5_000);
    if (m.connected) return { child };
    await child.stop();
    return { pending: `agent did not connect within ${timeoutMs} ms (state ${JSON.stringify(m.state)})` };
  } catch (err) {
    await child.stop();
    return { pending: `agent failed: ${(err as Error).message.split('\n')[0]}` };
  }
}

export async function waitUntilRoutable(url: string, token: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' }).catch(() => undefined);
    if (res && res.status !== 404) return void (await res.arrayBuffer());
    if (Date.now() > deadline) throw new Error(`${url} not routable`);
    await sleep(50);
  }
}
