import type { Tracer } from '@opentelemetry/api';
import type { Logger } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { AlwaysOnSampler, BasicTracerProvider, type IdGenerator, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { BoundedBatch, type BatchStats } from './bounded-batch.js';
import type { ResolvedTelemetryOptions } from './options.js';

export type Signal = 'logs' | 'traces';

export interface OtlpPipeline {
  tracer?: Tracer;
  logger?: Logger;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const SCOPE = 'octelium-ts/gateway';

class SpanBatchProcessor implements SpanProcessor {
  constructor(private readonly batch: BoundedBatch<ReadableSpan>) {}
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    this.batch.add(span);
  }
  forceFlush(): Promise<void> {
    return this.batch.flush();
  }
  shutdown(): Promise<void> {
    return this.batch.shutdown();
  }
}

class LogBatchProcessor implements LogRecordProcessor {
  constructor(private readonly batch: BoundedBatch<ReadWriteLogRecord>) {}
  onEmit(record: ReadWriteLogRecord): void {
    this.batch.add(record);
  }
  forceFlush(): Promise<void> {
    return this.batch.flush();
  }
  shutdown(): Promise<void> {
    return this.batch.shutdown();
  }
}

/**
 * The OpenTelemetry SDK wired for OTLP/HTTP (JSON encoding, so any receiver can read it), one provider
 * per signal, each behind a BoundedBatch. Nothing here is global: several clusters in one process (tests)
 * each get their own providers and never touch the API's global registrations. With `ids`, span ids
 * come from the caller and every span is recorded (sampling was decided where the ids were made).
 */
export function createOtlpPipeline(o: NonNullable<ResolvedTelemetryOptions['otlp']>, stats: (signal: Signal) => BatchStats, ids?: IdGenerator): OtlpPipeline {
  const resource = resourceFromAttributes({ [ATTR_SERVICE_NAME]: o.serviceName });
  const batchOpts = { maxQueueSize: o.maxQueueSize, maxExportBatchSize: o.maxExportBatchSize, scheduledDelayMillis: o.scheduledDelayMillis, exportTimeoutMillis: o.exportTimeoutMillis };
  const exporterOpts = (path: string) => ({ url: `${o.endpoint}${path}`, headers: o.headers, timeoutMillis: o.exportTimeoutMillis, concurrencyLimit: 2 });
  let tracerProvider: BasicTracerProvider | undefined;
  let loggerProvider: LoggerProvider | undefined;
  if (o.traces) {
    const batch = new BoundedBatch<ReadableSpan>(new OTLPTraceExporter(exporterOpts('/v1/traces')), batchOpts, stats('traces'));
    tracerProvider = new BasicTracerProvider({ resource, spanProcessors: [new SpanBatchProcessor(batch)], ...(ids ? { idGenerator: ids, sampler: new AlwaysOnSampler() } : {}) });
  }
  if (o.logs) {
    const batch = new BoundedBatch<ReadWriteLogRecord>(new OTLPLogExporter(exporterOpts('/v1/logs')), batchOpts, stats('logs'));
    loggerProvider = new LoggerProvider({ resource, processors: [new LogBatchProcessor(batch)] });
  }
  return {
    tracer: tracerProvider?.getTracer(SCOPE),
    logger: loggerProvider?.getLogger(SCOPE),
    flush: async () => {
      await Promise.all([tracerProvider?.forceFlush(), loggerProvider?.forceFlush()]);
    },
    shutdown: async () => {
      await Promise.all([tracerProvider?.shutdown(), loggerProvider?.shutdown()]);
    },
  };
}
