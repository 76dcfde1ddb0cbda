import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessLogStore } from '../accesslog/store.js';
import type { IdentityService } from '../auth/identity.js';
import type { GatewayHooks, GatewayStage } from '../gateway/deps.js';
import type { ResourceStore } from '../store/resource-store.js';
import { GatewayMetrics } from './metrics.js';
import { resolveTelemetryOptions, type ResolvedTelemetryOptions, type TelemetryOptions } from './options.js';
import { OtlpWorkerClient } from './otlp-client.js';
import { Redactor } from './redaction.js';
import { responseCaptureStage } from './response-capture.js';
import { tracingHooks } from './tracing-hook.js';

export type { TelemetryOptions } from './options.js';
export type { TunnelStats } from './metrics.js';

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface Telemetry {
  options: ResolvedTelemetryOptions;
  metrics: GatewayMetrics;
  redactor: Redactor;
  otlp?: OtlpWorkerClient;
  /** Gateway hooks: request metrics, and spans when exporting. (The redactor gets each request with its log.) */
  hooks: GatewayHooks[];
  /** Response body capture: after authorize, when the effective config (dynamicConfig included) is known. */
  responseCapture: GatewayStage;
  /** Cluster-host routes (`/metrics`). */
  routes: Record<string, Route>;
  /** Exports everything queued (tests; shutdown does it too). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The visibility subsystem: AccessLog redaction (always), Prometheus `/metrics` (always), response body
 * capture (per Service), and OTLP export of AccessLogs and spans (when an endpoint is configured). It hands back
 * what it adds; cluster.ts places the hooks, the stage and the route.
 */
export function registerTelemetry(
  base: { store: ResourceStore; identity: IdentityService; accessLogs: AccessLogStore },
  input: TelemetryOptions | undefined,
): Telemetry {
  const options = resolveTelemetryOptions(input);
  const metrics = new GatewayMetrics();
  const redactor = new Redactor(base.store, options.redact);
  base.accessLogs.redact = redactor.redact;
  const otlp = options.otlp
    ? new OtlpWorkerClient(options.otlp, (signal) => ({
        dropped: (n, reason) => metrics.otlpDropped.inc({ signal, reason }, n),
        exported: (n) => metrics.otlpExported.inc({ signal }, n),
      }))
    : undefined;
  metrics.setAccessLogStats(() => ({ writeFailures: base.accessLogs.writeFailures, dropped: base.accessLogs.dropped }));
  return {
    options, metrics, redactor, otlp,
    hooks: [metrics.hooks(), ...(otlp ? [tracingHooks(otlp, options.otlp!)] : [])],
    responseCapture: responseCaptureStage({ defaultOn: options.captureResponseBody, maxBytes: options.maxResponseBodyBytes }),
    routes: { '/metrics': metrics.route(base.identity, options.metricsPublic) },
    flush: async () => otlp?.flush(),
    close: async () => {
      await otlp?.shutdown();
      redactor.close();
      metrics.registry.clear();
    },
  };
}
