import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { clusterURL, type ClusterInfo } from '@octelium-ts/shared';
import { joinCluster, openStore } from './store/open-store.js';
import { registerReplicas, type ReplicaOptions } from './replicas/index.js';
import { ResourceStore } from './store/resource-store.js';
import { TokenStore } from './auth/tokens.js';
import { IdentityService } from './auth/identity.js';
import { KeyRing } from './oauth/keyring.js';
import { createAuthorizationServer, type AuthorizationServerConfig } from './oauth/index.js';
import { registerMcp } from './mcp/index.js';
import { AccessLogStore } from './accesslog/store.js';
import { createApiHandler } from './api/router.js';
import type { AdmissionCheck } from './api/admission.js';
import { bootstrap } from './bootstrap.js';
import { createHttpServer } from './server/http-server.js';
import { Faults } from './server/faults.js';
import { resolveLimits, type ListenerLimits } from './server/limits.js';
import { ServiceIndex } from './gateway/service-index.js';
import { UpstreamAuth } from './gateway/upstream-auth.js';
import { coreStages, createGateway } from './gateway/pipeline.js';
import type { GatewayDeps, PluginRuntime } from './gateway/deps.js';
import { TunnelHub, type TunnelLimits } from './tunnel/index.js';
import { BUILTIN_POLICIES, PolicyEngine, checkExpressions } from './policy/index.js';
import { policyTestRoute } from './policy/test-route.js';
import { ExtProcRuntime } from './plugins/extproc-runtime.js';
import { LuaRuntime } from './plugins/lua-runtime.js';
import { checkLuaPlugins } from './plugins/admission.js';
import { registerTelemetry, type TelemetryOptions } from './telemetry/index.js';
import { registerHumanIdentity, type HumanLoginConfig } from './web/index.js';
import { ContainerEndpoints, ContainerReconciler, containerLogsRoute, selectRuntime, type DockerRuntimeOptions, type ReconcilerOptions, type RuntimeChoice } from './containers/index.js';
import { clusterId } from './containers/cluster-id.js';
import { ContainerLeader } from './containers/leadership.js';
import { EndpointFeed } from './containers/endpoint-feed.js';

export interface ClusterOptions {
  dataDir: string | ':memory:';
  /** `postgres://USER@HOST:PORT/DB`: the store shared by every replica of the cluster (design.md §9); default SQLite in dataDir. */
  store?: string;
  /** How the other replicas reach this one (replica-to-replica forwarding); default its listen URL. */
  advertiseURL?: string;
  /** Leases and forwarding between replicas on a shared store (docs/scaling.md). */
  replicas?: ReplicaOptions;
  host?: string;
  port?: number;
  /**
   * Public host name; the listen port is appended when it is not 80/443, unless the name already carries a port
   * (replicas behind one load balancer share `--domain host:port`, so every one issues tokens for the same issuer).
   */
  domain?: string;
  /** On close, how long in-flight requests (open SSE streams included) may take before they are cut; default 5 s. */
  shutdownGraceMs?: number;
  /** Listener and gateway limits (server/limits.ts; defaults in docs/security.md). */
  limits?: Partial<ListenerLimits>;
  /** Tunnel limits: streams, buffer budgets, connections per user (docs/tunnel.md, Limits). */
  tunnel?: TunnelLimits;
  /** OTLP export, redaction, response capture, /metrics (docs/visibility.md); OTEL_EXPORTER_OTLP_ENDPOINT is honoured. */
  telemetry?: TelemetryOptions;
  /** Managed containers (design.md §8, docs/containers.md): the runtime (default: docker when its socket answers, else none). */
  containers?: { runtime?: RuntimeChoice; docker?: Partial<DockerRuntimeOptions>; reconciler?: ReconcilerOptions };
  /** Built-in authorization server (docs/mcp.md). */
  oauth?: AuthorizationServerConfig;
  /** Browser Sessions of HUMAN users: lifetime and idle timeout (docs/identity.md). */
  humanLogin?: HumanLoginConfig;
}

export interface Cluster {
  url: string;
  port: number;
  domain: string;
  /** Present on first start only. */
  bootstrapToken?: string;
  store: ResourceStore;
  accessLogs: AccessLogStore;
  /** The `octelium connect` hub (agents, buffer use). */
  tunnel: TunnelHub;
  /** Unexpected exceptions caught at an entry point, by where; also in /metrics. */
  faults: Faults;
  /** Which store this replica uses, for humans: `SQLite in DIR` or `PostgreSQL at HOST:PORT/DB`. */
  storeWhere: string;
  /**
   * The container runtime in use and why (the startup line says it), who runs the reconciler (one process of the
   * cluster: the leader) and the gateway's replica table.
   */
  containers: { runtime: 'docker' | 'kubernetes' | 'none'; reason: string; clusterId: string; leader: ContainerLeader; endpoints: ContainerEndpoints };
  close(): Promise<void>;
}

/** Composition root: one SQLite file, the API, the OAuth2 endpoint, the gateway and the tunnel hub on one listener. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const limits = resolveLimits(opts.limits);
  const faults = new Faults();
  // SQLite in the data dir, or PostgreSQL shared by every replica (--store; docs/scaling.md).
  const backing = await openStore({ dataDir: opts.dataDir, url: opts.store });
  let domain = opts.domain ?? 'localhost';
  let store: ResourceStore, tokens: TokenStore, keys: KeyRing, clusterSecret: string;
  try {
    clusterSecret = joinCluster(backing, domain, process.env.OCTELIUM_CLUSTER_SECRET || undefined);
    store = new ResourceStore(backing.feed);
    tokens = new TokenStore(backing.feed);
    keys = await KeyRing.open(backing.feed);
  } catch (err) {
    await backing.close();
    throw err;
  }
  const identity = new IdentityService(store, tokens, keys, () => clusterURL(domain));
  const accessLogs = new AccessLogStore(backing.accessLogTable);
  const policy = new PolicyEngine(store, { allowWhenNoRules: true });
  // Human identity: IdentityProviders, /login, /callback, /portal and the octelium_auth cookie (docs/identity.md).
  const human = registerHumanIdentity({ store, identity, policy, clusterUrl: () => clusterURL(domain), config: opts.humanLogin, sql: backing.sql });
  const checks: AdmissionCheck[] = [checkExpressions, checkLuaPlugins];
  // Managed containers: the runtime is picked once the listener is up (loading dockerode and asking the daemon is
  // ~150 ms that need not delay listening); until then a container Service has no ready replica, as at any start.
  const containerClusterId = clusterId(backing.sql);
  const containerEndpoints = new ContainerEndpoints();
  let selected: Awaited<ReturnType<typeof selectRuntime>> = { reason: 'container runtime: not chosen yet (the cluster is starting)' };

  let lua: LuaRuntime | undefined = undefined;
  const index = new ServiceIndex(store, (previous) => previous && lua?.evict(previous.versionKey));
  // Lua http.client must never call back into this listener (selfURL is set once it listens).
  lua = new LuaRuntime(index, () => selfURL);
  const extProc = new ExtProcRuntime();
  const pluginRuntimes: PluginRuntime[] = [lua, extProc];
  let selfURL = '';
  const tunnel = new TunnelHub({
    authenticate: (token) => identity.authenticateOpaque(token),
    getService: (name) => store.get('Service', name),
    listServices: () => store.list('Service'),
    // Published (agent → cluster) requests are replayed on the loopback listener, through the full pipeline.
    selfURL: () => selfURL,
    ...opts.tunnel,
  });
  // Cluster-host routes and things to stop on close, gathered from the subsystems below.
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>>();
  const onClose: Array<() => void | Promise<void>> = [];
  // Replicas on a shared store: agents are registered there, and requests for them forwarded to their replica.
  const replicas = backing.kind === 'postgres' || opts.replicas?.privateListener
    ? registerReplicas({ sql: backing.sql, hub: tunnel, clusterSecret, advertiseURL: () => opts.advertiseURL ?? selfURL, onClose }, opts.replicas)
    : undefined;
  // One process of the cluster reconciles containers (the holder of the `containers` lease); with replicas, the
  // others' gateways follow the endpoints it publishes in the store (docs/containers.md, "One leader").
  const containerLog = opts.containers?.reconciler?.log ?? ((m: string) => console.error(`containers: ${m}`));
  const containerLeader = new ContainerLeader(
    () => new ContainerReconciler(store, selected.runtime, containerEndpoints, selected.reason, opts.containers?.reconciler),
    { log: containerLog, onDeposed: () => endpointFeed?.follow() },
  );
  const endpointFeed = replicas ? new EndpointFeed(backing.feed, containerEndpoints, containerLeader, containerLog) : undefined;
  // Visibility: redaction, /metrics, response capture, OTLP (docs/visibility.md).
  const telemetry = registerTelemetry({ store, identity, accessLogs }, opts.telemetry);
  for (const [path, route] of Object.entries(telemetry.routes)) routes.set(path, route);
  onClose.push(() => telemetry.close());
  telemetry.metrics.setFaults(() => faults.counts());
  telemetry.metrics.setTunnelStats(() => {
    const agents = tunnel.agents();
    return { connections: agents.length, streams: agents.reduce((n, a) => n + a.streams, 0) };
  });
  // MCP: OAuth authorization server on the cluster host, resource-server stages and hooks in the gateway (docs/mcp.md).
  const clusterUrl = () => clusterURL(domain);
  const authz = createAuthorizationServer({
    identity, keys, store, sql: backing.sql, issuer: clusterUrl, limits: opts.oauth?.limits,
    cimdAllowLoopbackHttp: opts.oauth?.cimdAllowLoopbackHttp ?? process.env.OCTELIUM_DEV_CIMD_ALLOW_LOOPBACK_HTTP === '1',
    protectedResourceMetadata: (req, res, u) => mcp.protectedResourceMetadata(req, res, u),
    human: { idps: human.idps, browser: human.browser },
  });
  // Policy decisions and plugin runs are timed for /metrics, here where the functions are handed out.
  const authorize = telemetry.metrics.timedDecisions((facts) => policy.authorize(facts));
  const mcp = registerMcp({ index, policy, authorize, resources: authz.resources, clusterUrl, selfURL: () => selfURL, sharedStore: replicas ? backing.sql : undefined });
  onClose.push(() => authz.close(), () => mcp.close(), () => human.close());
  const deps: GatewayDeps = {
    store, identity, accessLogs, index,
    upstreamAuth: new UpstreamAuth(store),
    authorize,
    selectDynamicConfig: (svc, facts) => policy.selectDynamicConfig(svc, facts),
    evaluateCondition: (cond, facts) => policy.condition(cond, facts),
    pluginRuntimes: pluginRuntimes.map((rt) => telemetry.metrics.timedPlugins(rt)),
    tunnel: replicas?.router ?? tunnel,
    containers: containerEndpoints,
    localUpstream: mcp.localUpstream,
    limits,
    faults,
    browser: human.browser,
  };
  const core = coreStages(deps);
  // The order a request goes through the gateway (design.md §5), every stage of every subsystem in one list.
  const gateway = createGateway(deps, {
    stages: [
      core.route, //                      Host / no-DNS path → Service
      ...mcp.stages.edge, //              MCP Origin/Host checks, CORS preflight, RFC 9728 metadata; federation member hops
      core.authenticate, //               bearer, X-Octelium-Auth, the octelium_auth cookie; anonymous Services
      core.limitInflight, //              requests in flight per user
      core.buffer, //                     the body, parsed into bodyMap for JSON Services
      ...mcp.stages.beforeAuthorize, //   token audience and scope, MCP protocol checks, per-element decisions
      core.authorize, //                  CEL policies (DENY beats ALLOW), then dynamicConfig
      telemetry.responseCapture, //       response body capture for the AccessLog
      core.plugins, //                    header edits, Lua, ExtProc, direct, path
      core.upstream, //                   upstream URL, container, tunnel or federation; the response streams back
    ],
    // Watch every request: metrics and spans, then MCP's session bookkeeping.
    hooks: [...telemetry.hooks, ...mcp.hooks],
  });
  const api = createApiHandler({ store, identity, accessLogs, checks, extraRoutes: { '/policy/test': policyTestRoute(store, policy), '/containerlogs': containerLogsRoute(store, () => selected.runtime, () => selected.reason) } });
  const oauth2 = authz.handle;
  // Probes (deploy/kubernetes/): /healthz says the process serves; /readyz also needs the store to answer.
  routes.set('/readyz', (_req, res) => {
    try {
      backing.check();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ready', store: backing.kind }));
    } catch (err) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'unavailable', store: backing.kind, reason: (err as Error).message }));
    }
  });
  const domainHost = () => domain.replace(/:\d+$/, '').toLowerCase();
  const server: Server = createHttpServer(domainHost, { api, oauth2, gateway, routes, web: human.web, connectUpgrade: (req, socket, head) => replicas?.upgrade(req, socket, head) || tunnel.handleUpgrade(req, socket, head) }, limits, faults);

  const release = async () => {
    await containerLeader.close();
    await selected.runtime?.close();
    for (const c of onClose) await c();
    index.close();
    policy.close();
    extProc.close();
    await lua.close();
    await accessLogs.close();
    await backing.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 8090, opts.host ?? '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await release();
    throw listenError(err, opts.host ?? '127.0.0.1', opts.port ?? 8090);
  }
  // Only once the listener is up: a start that fails (port busy) must not use up the "shown once" bootstrap token.
  const bootstrapToken = bootstrap(store, identity, opts.dataDir, BUILTIN_POLICIES);
  // From here on other processes' commits (replicas on PostgreSQL, --workers siblings) reach every mirror.
  backing.feed.onHealth = (ok, err) => console.error(ok ? `store: ${backing.where} answers again; mirrors caught up` : `store: cannot follow ${backing.where}: ${(err as Error).message}; serving from memory, writes fail with 503 until it answers`);
  backing.follow();
  const port = (server.address() as AddressInfo).port;
  const listenHost = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  selfURL = `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`;
  await replicas?.start(); // its lease advertises selfURL (or --advertise-url), known only now
  if (port !== 80 && port !== 443 && !/:\d+$/.test(domain)) domain = `${domain}:${port}`;
  const url = clusterURL(domain);
  const info: ClusterInfo = { url, port, domain };
  if (opts.dataDir !== ':memory:') {
    // Written aside and renamed: whoever waits for the file (scripts, tests, probes) never reads half of it.
    const file = join(opts.dataDir, 'cluster.json');
    writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(info, null, 2) + '\n');
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  // After cluster.json: waiting for dockerode and the daemon must not delay "listening". The leader's reconciler adopts
  // running containers, removes orphans, then follows the change feed; it never throws (errors go to status).
  selected = await selectRuntime(opts.containers?.runtime, containerClusterId, { docker: opts.containers?.docker })
    .catch((err: Error) => ({ reason: `container runtime: none (it could not be set up: ${err.message})` }));
  containerLeader.start(replicas?.registry);

  let closing: Promise<void> | undefined;
  return {
    ...info, bootstrapToken, store, accessLogs, tunnel, faults, storeWhere: backing.where,
    containers: { runtime: selected.runtime?.name ?? 'none', reason: selected.reason, clusterId: containerClusterId, leader: containerLeader, endpoints: containerEndpoints },
    close: () => (closing ??= (async () => {
      // Stop accepting, let in-flight requests finish (bounded), then close the DB.
      const closed = new Promise<void>((r) => server.close(() => r()));
      await tunnel.close();
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), opts.shutdownGraceMs ?? 5_000);
      await closed;
      clearTimeout(timer);
      await release();
    })()),
  };
}

/** What to tell a person whose cluster could not listen. */
function listenError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new Error(`${host}:${port} is already in use — probably a cluster is already running there (stop it, e.g. \`pkill -f octelium-cluster\`), or start this one on another port with --port <n> (0 picks a free one)`);
  }
  if (code === 'EACCES') return new Error(`not allowed to listen on ${host}:${port}; ports below 1024 need privileges — use --port with a higher number`);
  return err instanceof Error ? err : new Error(String(err));
}
