import { ExportResultCode } from '@opentelemetry/core';
import { BoundedBatch, type BatchExporter, type BatchStats } from './bounded-batch.js';
import { ByteBuffer } from './byte-buffer.js';
import type { ExportItem } from './export-item.js';
import { envGzip, envHeaders, OtlpHttpSender } from './otlp-http.js';
import { OtlpJsonEncoder } from './otlp-json.js';
import type { ResolvedTelemetryOptions } from './options.js';

export type Signal = 'logs' | 'traces';

export interface OtlpPipeline {
  /** Queues the item's span (when sampled and traces are exported) and log record (when logs are). */
  record(it: ExportItem): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const SCOPE = 'octelium-ts/gateway';
/** A buffer that grew past this for one big batch is let go after it, not kept for the process's lifetime. */
const MAX_KEPT_BUFFER = 8 << 20;

/**
 * Writes a batch into an export request and sends it. The request's bytes go into a buffer kept from one export
 * to the next (byte-buffer.ts): one export runs at a time per signal, so it is normally free; if an earlier send
 * still holds it (its batch gave up waiting, bounded-batch.ts, but the request has not ended), this export gets
 * its own, so bytes being sent are never overwritten.
 */
function exporter(sender: OtlpHttpSender, encode: (items: ExportItem[], out: ByteBuffer) => void): BatchExporter<ExportItem> {
  let spare: ByteBuffer | undefined = new ByteBuffer();
  return {
    export: (items, done) => {
      const out = spare ?? new ByteBuffer();
      spare = undefined;
      const release = (ok: boolean) => {
        if (out.capacity <= MAX_KEPT_BUFFER) spare = out;
        done({ code: ok ? ExportResultCode.SUCCESS : ExportResultCode.FAILED });
      };
      try {
        out.reset();
        encode(items, out);
      } catch {
        return release(false);
      }
      sender.send(out.bytes()).then(release, () => release(false));
    },
    shutdown: async () => undefined,
  };
}

/**
 * OTLP/HTTP export (JSON encoding, so any receiver can read it), one bounded batch per signal. Both queue the
 * export items as they came from the request thread; a batch is written as OTLP/JSON when it is sent
 * (otlp-json.ts). Nothing here is global: several clusters in one process (tests) each get their own pipeline.
 */
export function createOtlpPipeline(o: NonNullable<ResolvedTelemetryOptions['otlp']>, stats: (signal: Signal) => BatchStats): OtlpPipeline {
  const batchOpts = { maxQueueSize: o.maxQueueSize, maxExportBatchSize: o.maxExportBatchSize, scheduledDelayMillis: o.scheduledDelayMillis, exportTimeoutMillis: o.exportTimeoutMillis };
  const encoder = new OtlpJsonEncoder(o.serviceName, SCOPE);
  const sender = (signal: 'LOGS' | 'TRACES', path: string) => new OtlpHttpSender(`${o.endpoint}${path}`, { ...envHeaders(signal), ...o.headers }, o.exportTimeoutMillis, envGzip(signal));
  const spans = o.traces ? new BoundedBatch<ExportItem>(exporter(sender('TRACES', '/v1/traces'), (items, out) => encoder.spans(items, out)), batchOpts, stats('traces')) : undefined;
  const logs = o.logs ? new BoundedBatch<ExportItem>(exporter(sender('LOGS', '/v1/logs'), (items, out) => encoder.logs(items, out)), batchOpts, stats('logs')) : undefined;
  return {
    record(it) {
      it.observedMs = Date.now();
      if (spans && it.span?.sampled) spans.add(it);
      if (logs && it.log) logs.add(it);
    },
    flush: async () => {
      await Promise.all([spans?.flush(), logs?.flush()]);
    },
    shutdown: async () => {
      await Promise.all([spans?.shutdown(), logs?.shutdown()]);
    },
  };
}
