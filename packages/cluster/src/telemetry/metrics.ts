import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { OcteliumError } from '@octelium-ts/shared';
import type { IdentityService } from '../auth/identity.js';
import { bearerToken } from '../api/http-util.js';
import type { GatewayDeps, GatewayHooks, PluginRuntime } from '../gateway/deps.js';
import { CellCounter, CellHistogram } from './cell-metrics.js';
import { mcpInfo } from './mcp-info.js';

/** MCP methods get their own label value; anything else a client sends is "other" (label cardinality stays bounded). */
const MCP_METHODS = new Set([
  'initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/read', 'resources/templates/list',
  'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get', 'completion/complete', 'logging/setLevel',
]);
const UPSTREAM_ERRORS = new Set(['OCT_ERR_UPSTREAM_FAILED', 'OCT_ERR_UPSTREAM_TIMEOUT', 'OCT_ERR_UPSTREAM_NOT_CONNECTED']);
/** Gateway latency buckets (seconds): sub-millisecond policy work up to long SSE streams. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const FAST_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

/** HTTP status codes as label values, made once each (String(code) per request was garbage). */
const STATUS_LABELS: string[] = [];
function statusLabel(code: number): string {
  return (STATUS_LABELS[code] ??= String(code));
}

export interface TunnelStats { connections: number; streams: number }

/**
 * Prometheus metrics of one cluster, on its own registry (never prom-client's global one, so that
 * several clusters in one process keep separate counts).
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  // Updated on every request: cell metrics (cell-metrics.ts), rendered like prom-client's.
  readonly requests = new CellCounter({ name: 'octelium_gateway_requests_total', help: 'Gateway requests by Service, decision and HTTP status', labelNames: ['service', 'namespace', 'decision', 'code'], registry: this.registry });
  readonly duration = new CellHistogram({ name: 'octelium_gateway_request_duration_seconds', help: 'Gateway request latency, first byte in to last byte out', labelNames: ['service', 'decision'], buckets: LATENCY_BUCKETS, registry: this.registry });
  readonly upstreamErrors = new Counter({ name: 'octelium_gateway_upstream_errors_total', help: 'Requests that failed at the upstream (502/503/504)', labelNames: ['service', 'code'] as const, registers: [this.registry] });
  readonly mcpRequests = new CellCounter({ name: 'octelium_gateway_mcp_requests_total', help: 'JSON-RPC requests by MCP method (buffered JSON bodies only)', labelNames: ['service', 'method', 'decision'], registry: this.registry });
  readonly policyDuration = new CellHistogram({ name: 'octelium_gateway_policy_duration_seconds', help: 'Time of one authorization decision (CEL policies)', labelNames: ['decision'], buckets: FAST_BUCKETS, registry: this.registry });
  readonly pluginDuration = new Histogram({ name: 'octelium_gateway_plugin_duration_seconds', help: 'Request-phase time of Lua and ExtProc plugins', labelNames: ['service', 'type'] as const, buckets: FAST_BUCKETS, registers: [this.registry] });
  readonly tunnelConnections = new Gauge({ name: 'octelium_tunnel_connections', help: 'Connected `octelium connect` agents', registers: [this.registry], collect: () => this.#collectTunnel() });
  readonly tunnelStreams = new Gauge({ name: 'octelium_tunnel_streams', help: 'Open request streams over agent tunnels', registers: [this.registry], collect: () => this.#collectTunnel() });
  readonly otlpDropped = new Counter({ name: 'octelium_otlp_dropped_total', help: 'Telemetry records not exported (queue full or export failed)', labelNames: ['signal', 'reason'] as const, registers: [this.registry] });
  readonly otlpExported = new Counter({ name: 'octelium_otlp_exported_total', help: 'Telemetry records exported over OTLP', labelNames: ['signal'] as const, registers: [this.registry] });
  readonly unexpectedErrors = new Counter({ name: 'octelium_unexpected_errors_total', help: 'Unexpected exceptions caught at an entry point (the request got a 5xx, the process kept serving)', labelNames: ['where'] as const, registers: [this.registry], collect: () => this.#collectFaults() });
  readonly accessLogWriteFailures = new Counter({ name: 'octelium_accesslog_write_failures_total', help: 'AccessLog batches the writer could not store (e.g. disk full); they are retried', registers: [this.registry], collect: () => this.#collectAccessLogs() });
  readonly accessLogsDropped = new Counter({ name: 'octelium_accesslog_dropped_total', help: 'AccessLogs lost because the writer stayed failing past its queue bound', registers: [this.registry], collect: () => this.#collectAccessLogs() });
  #tunnelStats?: () => TunnelStats;
  #accessLogStats?: () => { writeFailures: number; dropped: number };
  #faults?: () => ReadonlyMap<string, number>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** The tunnel hub (or cluster.ts on its behalf) can hand over a reader; read on each scrape. */
  setTunnelStats(fn: () => TunnelStats): void {
    this.#tunnelStats = fn;
  }

  /** The listener's fault counts (server/faults.ts), read on each scrape. */
  setFaults(fn: () => ReadonlyMap<string, number>): void {
    this.#faults = fn;
  }

  /** The AccessLog writer's failure counts (accesslog/store.ts), read on each scrape. */
  setAccessLogStats(fn: () => { writeFailures: number; dropped: number }): void {
    this.#accessLogStats = fn;
  }

  #collectAccessLogs(): void {
    const s = this.#accessLogStats?.();
    if (!s) return;
    this.accessLogWriteFailures.reset();
    this.accessLogWriteFailures.inc(s.writeFailures);
    this.accessLogsDropped.reset();
    this.accessLogsDropped.inc(s.dropped);
  }

  #collectFaults(): void {
    const counts = this.#faults?.();
    if (!counts) return;
    this.unexpectedErrors.reset();
    for (const [where, n] of counts) this.unexpectedErrors.inc({ where }, n);
  }

  #collectTunnel(): void {
    const s = this.#tunnelStats?.();
    if (!s) return;
    this.tunnelConnections.set(s.connections);
    this.tunnelStreams.set(s.streams);
  }

  hooks(): GatewayHooks {
    return {
      onResponse: (ctx, log) => {
        // Only names the Service table knows: a request for a missing Service must not mint a new label.
        const service = ctx.service ? ctx.service.metadata.name : '(unknown)';
        const decision = log.entry.common.status;
        this.requests.inc(service, ctx.service ? ctx.namespaceName : '(unknown)', decision, statusLabel(log.entry.info.http.response.code));
        this.duration.observe((performance.now() - ctx.startedAtMs) / 1000, service, decision);
        if (ctx.error && UPSTREAM_ERRORS.has(ctx.error.code)) this.upstreamErrors.inc({ service, code: ctx.error.code });
        const mcp = mcpInfo(log);
        if (mcp.method) {
          const method = MCP_METHODS.has(mcp.method) ? mcp.method : mcp.method.startsWith('notifications/') ? 'notifications' : 'other';
          this.mcpRequests.inc(service, method, decision);
        }
      },
    };
  }

  /**
   * A policy decision function that is timed into `octelium_gateway_policy_duration_seconds`. Applied by the
   * composition root (cluster.ts) where it builds the gateway's deps, so no stage needs timing code of its own.
   */
  timedDecisions(authorize: GatewayDeps['authorize']): GatewayDeps['authorize'] {
    return (facts) => {
      const t0 = performance.now();
      let decision = 'ERROR';
      try {
        const d = authorize(facts);
        decision = d.allowed ? 'ALLOWED' : 'DENIED';
        return d;
      } finally {
        this.policyDuration.observe((performance.now() - t0) / 1000, decision);
      }
    };
  }

  /** A plugin runtime whose request phase is timed into `octelium_gateway_plugin_duration_seconds`. */
  timedPlugins(rt: PluginRuntime): PluginRuntime {
    return {
      type: rt.type,
      applies: (p) => rt.applies(p),
      onRequest: async (p, ctx) => {
        const t0 = performance.now();
        try {
          await rt.onRequest(p, ctx);
        } finally {
          this.pluginDuration.observe({ service: ctx.service?.metadata.name ?? '(unknown)', type: rt.type }, (performance.now() - t0) / 1000);
        }
      },
    };
  }

  /** GET /metrics on the cluster host. Needs an admin access token unless `metricsPublic`. */
  route(identity: IdentityService, isPublic: boolean) {
    return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new OcteliumError('NOT_FOUND', 'only GET /metrics');
      if (!isPublic) {
        const token = bearerToken(req);
        const p = token ? await identity.authenticate(token) : undefined;
        if (!p) throw new OcteliumError('UNAUTHENTICATED', '/metrics needs an admin access token (Authorization: Bearer …)');
        if (!identity.isAdmin(p.user)) throw new OcteliumError('PERMISSION_DENIED', `user "${p.user.metadata.name}" is not an admin`);
      }
      const text = await this.registry.metrics();
      res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
  }
}
