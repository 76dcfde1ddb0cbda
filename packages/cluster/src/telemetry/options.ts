/** Visibility settings: ClusterOptions.telemetry, `octelium-cluster start` flags and the OTEL_* environment. */

export interface OtlpOptions {
  /** Base URL of an OTLP/HTTP receiver (`/v1/logs` and `/v1/traces` are appended), e.g. http://collector:4318. */
  endpoint: string;
  /** Extra HTTP headers on every export (e.g. an API key of a hosted backend). */
  headers?: Record<string, string>;
  /** `service.name` resource attribute. Default: OTEL_SERVICE_NAME, else "octelium-cluster". */
  serviceName?: string;
  /** Records waiting for export, per signal; past it new records are dropped (and counted). Default 2048. */
  maxQueueSize?: number;
  /** Records per export request. Default 512. */
  maxExportBatchSize?: number;
  /** Longest a record waits before its batch is sent. Default 1000 ms. */
  scheduledDelayMillis?: number;
  /** One export request may take this long; then its records count as dropped. Default 10000 ms. */
  exportTimeoutMillis?: number;
  /** Export AccessLogs as log records (default true). */
  logs?: boolean;
  /** Export one server span per gateway request and propagate W3C traceparent upstream (default true). */
  traces?: boolean;
}

export interface TelemetryOptions {
  /** OTLP/HTTP export; `false` turns it off even when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  otlp?: Partial<OtlpOptions> | false;
  /** Cluster-wide redaction, added to each Service's `config.http.visibility.redactPaths/redactHeaders`. */
  redact?: { paths?: string[]; headers?: string[] };
  /** Capture response bodies for Services that do not set `visibility.captureResponseBody` themselves. */
  captureResponseBody?: boolean;
  /** Cap for one captured response bodyMap (JSON body, or the JSON-RPC messages of an SSE stream). Default 64 KiB. */
  maxResponseBodyBytes?: number;
  /** `/metrics` without authentication (default: an admin access token is required). */
  metricsPublic?: boolean;
}

export interface ResolvedTelemetryOptions {
  otlp?: Required<Omit<OtlpOptions, 'headers'>> & { headers: Record<string, string> };
  redact: { paths: string[]; headers: string[] };
  captureResponseBody: boolean;
  maxResponseBodyBytes: number;
  metricsPublic: boolean;
}

export const DEFAULT_MAX_RESPONSE_BODY_BYTES = 64 * 1024;

/** Fills defaults; OTLP is on only when an endpoint is given or OTEL_EXPORTER_OTLP_ENDPOINT is set. */
export function resolveTelemetryOptions(o: TelemetryOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedTelemetryOptions {
  const otlpIn = o.otlp === false ? undefined : o.otlp ?? {};
  const endpoint = otlpIn?.endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return {
    otlp: otlpIn && endpoint
      ? {
          endpoint: endpoint.replace(/\/+$/, ''),
          headers: otlpIn.headers ?? {},
          serviceName: otlpIn.serviceName ?? env.OTEL_SERVICE_NAME ?? 'octelium-cluster',
          maxQueueSize: otlpIn.maxQueueSize ?? 2048,
          maxExportBatchSize: Math.min(otlpIn.maxExportBatchSize ?? 512, otlpIn.maxQueueSize ?? 2048),
          scheduledDelayMillis: otlpIn.scheduledDelayMillis ?? 1000,
          exportTimeoutMillis: otlpIn.exportTimeoutMillis ?? 10_000,
          logs: otlpIn.logs ?? true,
          traces: otlpIn.traces ?? true,
        }
      : undefined,
    redact: { paths: o.redact?.paths ?? [], headers: (o.redact?.headers ?? []).map((h) => h.toLowerCase()) },
    captureResponseBody: o.captureResponseBody ?? false,
    maxResponseBodyBytes: o.maxResponseBodyBytes ?? DEFAULT_MAX_RESPONSE_BODY_BYTES,
    metricsPublic: o.metricsPublic ?? false,
  };
}
