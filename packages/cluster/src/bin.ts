import { Command, InvalidArgumentError, Option } from 'commander';
import { exampleText } from '@octelium-ts/shared';
import { resolve } from 'node:path';
import nodeCluster from 'node:cluster';
import { startCluster } from './cluster.js';
import { superviseWorkers } from './workers.js';

/** Commander collector for repeatable flags. */
const collect = (v: string, all: string[]) => [...all, v];

/** A non-negative integer flag, or a clear error naming the flag. */
function count(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

interface StartFlags {
  dataDir: string; host: string; port: string; domain: string; store?: string; advertiseUrl?: string; replicaTimeout?: number; workers?: number;
  trustedProxyHops?: number; maxHeaderBytes?: number; maxHeaderCount?: number; maxUrlBytes?: number; headersTimeout?: number;
  requestTimeout?: number; maxBodyBytes?: number; maxInflightPerUser?: number;
  containerRuntime?: 'docker' | 'kubernetes' | 'none';
  otlpEndpoint?: string; otlpHeader: string[]; redactPath: string[]; redactHeader: string[]; captureResponseBody: boolean; metricsPublic: boolean;
}

const program = new Command('octelium-cluster').description('octelium-ts cluster: control-plane API, gateway, OAuth2 and tunnel hub in one process');

program
  .command('start')
  .description('start the cluster on embedded SQLite')
  .option('--data-dir <dir>', 'data directory (SQLite file, bootstrap token)', './.octelium')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <n>', 'listen port (0 = ephemeral)', '8090')
  .option('--domain <d>', "the cluster's public host name", 'localhost')
  .option('--store <url>', 'the store shared by every replica of this cluster, postgres://USER@HOST:PORT/DB (default: $OCTELIUM_STORE, else SQLite in --data-dir)')
  .option('--advertise-url <url>', 'how the other replicas reach this one (default: its listen URL)')
  .option('--workers <n>', 'processes sharing this listener and store, to use more than one core (node:cluster; default 1)', count('--workers'))
  .option('--replica-timeout <ms>', 'how long the replica holding a tunnel agent may take to answer a forwarded request, 504 past it (default 60000)', count('--replica-timeout'))
  .addOption(new Option('--container-runtime <runtime>', 'runs Services with upstream.container (default: docker when the Docker socket answers, else none)').choices(['docker', 'kubernetes', 'none']))
  .option('--otlp-endpoint <url>', 'export AccessLogs and spans over OTLP/HTTP to this base URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT)')
  .option('--otlp-header <key=value>', 'extra header on OTLP exports (repeatable)', collect, [])
  .option('--redact-path <path>', 'bodyMap JSON path to redact in every AccessLog, e.g. params.arguments.password (repeatable)', collect, [])
  .option('--redact-header <name>', 'header whose values are scrubbed from AccessLogs, besides Authorization/Cookie (repeatable)', collect, [])
  .option('--capture-response-body', 'record JSON response bodies for Services that do not set visibility.captureResponseBody', false)
  .option('--metrics-public', 'serve /metrics without an admin token', false)
  .option('--trusted-proxy-hops <n>', 'proxies in front of the cluster whose X-Forwarded-* to keep (default 0: the cluster is the edge)', count('--trusted-proxy-hops'))
  .option('--max-header-bytes <n>', 'request header block limit, 431 past it (default 16384)', count('--max-header-bytes'))
  .option('--max-header-count <n>', 'request header fields limit, 431 past it (default 100)', count('--max-header-count'))
  .option('--max-url-bytes <n>', 'request target limit, 414 past it (default 8192)', count('--max-url-bytes'))
  .option('--headers-timeout <ms>', 'time for the request headers to arrive, 408 past it (default 20000)', count('--headers-timeout'))
  .option('--request-timeout <ms>', 'time for the whole request (headers + body) to arrive, 408 past it (default 300000)', count('--request-timeout'))
  .option('--max-body-bytes <n>', 'body limit for Services that set no maxRequestSize, 413 past it (default 104857600)', count('--max-body-bytes'))
  .option('--max-inflight-per-user <n>', 'gateway requests in flight per user, 429 past it (default 512)', count('--max-inflight-per-user'))
  .addHelpText('after', exampleText([
    'octelium-cluster start                                   # ./.octelium, http://localhost:8090, embedded SQLite',
    'octelium-cluster start --port 0 --data-dir /tmp/oct      # an ephemeral port (see DIR/cluster.json)',
    'octelium-cluster start --store postgres://octelium@db:5432/octelium --advertise-url http://10.0.0.5:8090',
    'octelium-cluster start --workers 2                       # one process per core, one listener',
    'octelium-cluster start --container-runtime none --trusted-proxy-hops 1',
  ]))
  .action(async (o: StartFlags) => {
    if ((o.workers ?? 1) > 1 && nodeCluster.isPrimary) return superviseWorkers(o.workers!);
    const dataDir = resolve(o.dataDir);
    const headers = Object.fromEntries(o.otlpHeader.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    // A stop signal may arrive while the cluster still starts (cluster.json is written before the container runtime
    // is chosen): it is handled from the first moment, and closes the cluster once the start has finished.
    let starting: ReturnType<typeof startCluster> | undefined;
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      const c = await starting?.catch(() => undefined);
      await c?.close();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    starting = startCluster({
      dataDir, host: o.host, port: Number(o.port), domain: o.domain,
      store: o.store ?? (process.env.OCTELIUM_STORE || undefined), advertiseURL: o.advertiseUrl, replicas: { headersMs: o.replicaTimeout, privateListener: nodeCluster.isWorker },
      containers: { runtime: o.containerRuntime },
      limits: {
        trustedProxyHops: o.trustedProxyHops, maxHeaderBytes: o.maxHeaderBytes, maxHeaderCount: o.maxHeaderCount, maxUrlBytes: o.maxUrlBytes,
        headersTimeoutMs: o.headersTimeout, requestTimeoutMs: o.requestTimeout, maxStreamedBodyBytes: o.maxBodyBytes, maxInflightPerUser: o.maxInflightPerUser,
      },
      telemetry: {
        otlp: o.otlpEndpoint ? { endpoint: o.otlpEndpoint, headers } : o.otlpHeader.length ? { headers } : undefined,
        redact: { paths: o.redactPath, headers: o.redactHeader },
        captureResponseBody: o.captureResponseBody,
        metricsPublic: o.metricsPublic,
      },
    });
    const cluster = await starting;
    if (stopping) return;
    if (cluster.bootstrapToken) {
      console.log(`Bootstrap auth token for user "root" (also in ${dataDir}/bootstrap-token; shown once):\n\n  ${cluster.bootstrapToken}\n`);
      console.log(`Next: npx octelium login --domain ${cluster.domain} --auth-token $(cat ${dataDir}/bootstrap-token)\n`);
    }
    console.log(`octelium-cluster listening on ${cluster.url} (domain ${cluster.domain}, data ${dataDir}, store ${cluster.storeWhere}; ${cluster.containers.reason})`);
    // Last line of defence (docs/security.md): every entry point catches its own errors; whatever still escapes
    // is logged and counted in /metrics, and the cluster keeps serving everyone else's requests.
    process.on('uncaughtException', (err) => cluster.faults.record('process', err));
    process.on('unhandledRejection', (err) => cluster.faults.record('process (unhandled rejection)', err));
  });

program
  .command('demo-mcp')
  .description('run the demo MCP server (streamable HTTP at /mcp; tools add and subtract) to put behind a Service')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <n>', 'listen port (0 = ephemeral)', '3001')
  .addHelpText('after', exampleText(['octelium-cluster demo-mcp --port 3001     # then upstream: {url: "http://127.0.0.1:3001"}']))
  .action(async (o: { host: string; port: string }) => {
    const { startDemoMcpServer } = await import('./demo/mcp-demo-server.js');
    const server = await startDemoMcpServer({ host: o.host, port: Number(o.port) });
    console.log(`demo MCP server listening on ${server.url}/mcp (tools: add, subtract)`);
    const stop = () => void server.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });

await program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`octelium-cluster: ${err.message}`);
  process.exit(1);
});
