import { ExportResultCode } from '@opentelemetry/core';
import { logAttributes } from './attributes.js';
import { BoundedBatch, type BatchExporter, type BatchStats } from './bounded-batch.js';
import type { ExportItem } from './export-item.js';
import { envGzip, envHeaders, OtlpHttpSender } from './otlp-http.js';
import { otlpEnvelopes, otlpLogRecord, otlpSpan, type OtlpRecord } from './otlp-json.js';
import type { ResolvedTelemetryOptions } from './options.js';

export type Signal = 'logs' | 'traces';

export interface OtlpPipeline {
  /** Queues the item's span (when sampled and traces are exported) and log record (when logs are). */
  record(it: ExportItem): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const SCOPE = 'octelium-ts/gateway';

/** Sends a batch of encoded records inside its envelope. */
function exporter(sender: OtlpHttpSender, envelope: (records: OtlpRecord[]) => string): BatchExporter<OtlpRecord> {
  return {
    export: (records, done) => void sender.send(envelope(records)).then((ok) => done({ code: ok ? ExportResultCode.SUCCESS : ExportResultCode.FAILED })),
    shutdown: async () => undefined,
  };
}

/**
 * OTLP/HTTP export (JSON encoding, so any receiver can read it), one bounded batch per signal. Records are
 * queued as plain OTLP objects (otlp-json.ts); a batch is one JSON.stringify. Nothing here
 * is global: several clusters in one process (tests) each get their own pipeline.
 */
export function createOtlpPipeline(o: NonNullable<ResolvedTelemetryOptions['otlp']>, stats: (signal: Signal) => BatchStats): OtlpPipeline {
  const batchOpts = { maxQueueSize: o.maxQueueSize, maxExportBatchSize: o.maxExportBatchSize, scheduledDelayMillis: o.scheduledDelayMillis, exportTimeoutMillis: o.exportTimeoutMillis };
  const envelopes = otlpEnvelopes(o.serviceName, SCOPE);
  const sender = (signal: 'LOGS' | 'TRACES', path: string) => new OtlpHttpSender(`${o.endpoint}${path}`, { ...envHeaders(signal), ...o.headers }, o.exportTimeoutMillis, envGzip(signal));
  const spans = o.traces ? new BoundedBatch<OtlpRecord>(exporter(sender('TRACES', '/v1/traces'), envelopes.spans), batchOpts, stats('traces')) : undefined;
  const logs = o.logs ? new BoundedBatch<OtlpRecord>(exporter(sender('LOGS', '/v1/logs'), envelopes.logs), batchOpts, stats('logs')) : undefined;
  return {
    record(it) {
      const attrs = logAttributes(it.facts); // shared by both records (serialized separately)
      if (spans && it.span?.sampled) spans.add(otlpSpan(it.span, it.facts, attrs));
      if (logs && it.log) logs.add(otlpLogRecord(it, Date.now(), attrs));
    },
    flush: async () => {
      await Promise.all([spans?.flush(), logs?.flush()]);
    },
    shutdown: async () => {
      await Promise.all([spans?.shutdown(), logs?.shutdown()]);
    },
  };
}
