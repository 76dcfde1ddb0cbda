import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessLogStore } from '../accesslog/store.js';
import type { IdentityService } from '../auth/identity.js';
import type { GatewayDeps, GatewayHooks, GatewayStage } from '../gateway/deps.js';
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

/** What cluster.ts hands over: its registration lists, and the deps the gateway is built from. */
export interface Registration {
  deps: GatewayDeps;
  hooks: GatewayHooks[];
  afterAuthorize: GatewayStage[];
  routes: Map<string, Route>;
  onClose: Array<() => void | Promise<void>>;
}

export interface Telemetry {
  options: ResolvedTelemetryOptions;
  metrics: GatewayMetrics;
  redactor: Redactor;
  otlp?: OtlpWorkerClient;
  /** Exports everything queued (tests; shutdown does it too). */
  flush(): Promise<void>;
}

/**
 * The visibility subsystem: AccessLog redaction (always), Prometheus `/metrics` (always), response body
 * capture (per Service), and OTLP export of AccessLogs and spans (when an endpoint is configured).
 * Must be registered before the gateway is created (it adds an afterAuthorize stage).
 */
export function registerTelemetry(
  base: { store: ResourceStore; identity: IdentityService; accessLogs: AccessLogStore },
  input: TelemetryOptions | undefined,
  r: Registration,
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

  // Order matters on the way in: the redactor must know the request before its log is recorded.
  metrics.setAccessLogStats(() => ({ writeFailures: base.accessLogs.writeFailures, dropped: base.accessLogs.dropped }));
  r.hooks.push(redactor.hooks(), metrics.hooks());
  if (otlp) r.hooks.push(tracingHooks(otlp, options.otlp!));
  r.afterAuthorize.push(responseCaptureStage({ defaultOn: options.captureResponseBody, maxBytes: options.maxResponseBodyBytes }));
  r.routes.set('/metrics', metrics.route(base.identity, options.metricsPublic));
  metrics.instrument(r.deps);
  r.onClose.push(async () => {
    await otlp?.shutdown();
    redactor.close();
    metrics.registry.clear();
  });
  return { options, metrics, redactor, otlp, flush: async () => otlp?.flush() };
}
