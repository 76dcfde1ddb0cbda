import { ExportResultCode, type ExportResult } from '@opentelemetry/core';

/** What the OTLP span and log exporters have in common. */
export interface BatchExporter<T> {
  export(items: T[], done: (r: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

export interface BatchOptions { maxQueueSize: number; maxExportBatchSize: number; scheduledDelayMillis: number; exportTimeoutMillis: number }

export interface BatchStats {
  dropped(n: number, reason: 'queue_full' | 'export_failed'): void;
  exported(n: number): void;
}

/**
 * A bounded export queue, shared by spans and log records. The SDK's own batch processors drop silently
 * when full; this one reports every drop so it can be a metric. Adding is O(1) and never waits: the
 * request path only pushes; one export at a time runs from a timer. When the receiver is slow or down,
 * the queue fills and new records are dropped instead of growing memory or slowing requests.
 */
export class BoundedBatch<T> {
  #queue: T[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #closed = false;

  constructor(private readonly exporter: BatchExporter<T>, private readonly opts: BatchOptions, private readonly stats: BatchStats) {}

  add(item: T): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.opts.maxQueueSize) return this.stats.dropped(1, 'queue_full');
    this.#queue.push(item);
    if (this.#queue.length >= this.opts.maxExportBatchSize && !this.#inflight) this.#schedule(0);
    else this.#schedule(this.opts.scheduledDelayMillis);
  }

  get queued(): number {
    return this.#queue.length;
  }

  #schedule(ms: number): void {
    if (this.#timer && ms > 0) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, ms);
    this.#timer.unref(); // pending telemetry never keeps the process alive
  }

  #drain(): void {
    if (this.#inflight || !this.#queue.length) return;
    const batch = this.#queue.splice(0, this.opts.maxExportBatchSize);
    this.#inflight = this.#send(batch).then(() => {
      this.#inflight = undefined;
      if (this.#queue.length >= this.opts.maxExportBatchSize) this.#schedule(0);
      else if (this.#queue.length) this.#schedule(this.opts.scheduledDelayMillis);
    });
  }

  #send(batch: T[]): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (ok) this.stats.exported(batch.length);
        else this.stats.dropped(batch.length, 'export_failed');
        resolve();
      };
      // The exporter has its own timeout; this one guarantees the queue moves on even if it never calls back.
      const timer = setTimeout(() => done(false), this.opts.exportTimeoutMillis + 1000);
      timer.unref();
      try {
        this.exporter.export(batch, (r) => done(r.code === ExportResultCode.SUCCESS));
      } catch {
        done(false);
      }
    });
  }

  /** Exports everything queued now (used on shutdown and by tests). */
  async flush(): Promise<void> {
    while (this.#queue.length || this.#inflight) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      if (!this.#inflight) this.#drain();
      await this.#inflight;
    }
  }

  /** Flushes for at most `timeoutMs`, then stops the exporter; later adds are ignored. */
  async shutdown(timeoutMs = 2000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
    clearTimeout(t);
    this.#closed = true;
    if (this.#queue.length) this.stats.dropped(this.#queue.length, 'export_failed');
    this.#queue = [];
    if (this.#timer) clearTimeout(this.#timer);
    await this.exporter.shutdown().catch(() => undefined);
  }
}
