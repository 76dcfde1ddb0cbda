import { Worker } from 'node:worker_threads';
import type { BatchStats } from './bounded-batch.js';
import type { AccessLog } from '@octelium-ts/shared';
import { encodeItem, type FromWorker, type ItemSpan, type ToWorker } from './export-item.js';
import type { Signal } from './otlp.js';
import type { ResolvedTelemetryOptions } from './options.js';

/**
 * Items are posted to the worker in groups: one copy per group, not per request, and few wake-ups of the
 * worker (each wake-up and its ack cost both threads a context switch; posting every 10 ms showed as 3–5 % of the
 * request thread's profile on a busy 2-core machine). Never later than the batch delay the exporter was given.
 */
const POST_BATCH = 256;
const POST_DELAY_MS = 50;

/** Compiled (dist/), the worker is plain JavaScript; run from TypeScript sources, a shim loads it through tsx. */
const WORKER_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './otlp-worker-entry.mjs' : './otlp-worker.js', import.meta.url);

/**
 * The request thread's side of OTLP export: queues ExportItems and posts them to the worker thread
 * (otlp-worker.ts), which does everything else. Bounded: items posted but not yet taken by the worker
 * count against `maxQueueSize`, so a stalled worker cannot grow this thread's memory either; past it,
 * items are dropped and counted as `queue_full`, like the worker's own queues do.
 */
export class OtlpWorkerClient {
  readonly #worker: Worker;
  /** Encoded items (encodeItem), and which signals each carries, for drop accounting. */
  #pending: string[] = [];
  #pendingSignals: Array<{ log: boolean; span: boolean }> = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #waiters = new Map<number, () => void>();
  #nextId = 1;
  #dead = false;
  #closed: Promise<void> | undefined;

  constructor(private readonly o: NonNullable<ResolvedTelemetryOptions['otlp']>, private readonly stats: (signal: Signal) => BatchStats) {
    this.#worker = new Worker(WORKER_ENTRY, { workerData: o });
    this.#worker.unref(); // telemetry never keeps the process alive
    this.#worker.on('message', (m: FromWorker) => this.#onMessage(m));
    this.#worker.on('error', (err) => {
      console.error('telemetry: OTLP worker failed; export stops:', err);
      this.#fail();
    });
    this.#worker.on('exit', () => this.#fail());
  }

  #onMessage(m: FromWorker): void {
    if (m.type === 'ack') this.#inFlight -= m.n;
    else if (m.type === 'stats') {
      const s = this.stats(m.signal);
      if (m.exported) s.exported(m.exported);
      if (m.dropped) s.dropped(m.dropped, m.reason ?? 'export_failed');
    } else if (m.type === 'done') {
      this.#waiters.get(m.id)?.();
      this.#waiters.delete(m.id);
    }
  }

  #fail(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#drop(this.#pendingSignals, 'export_failed');
    this.#pending = [];
    this.#pendingSignals = [];
    for (const w of this.#waiters.values()) w();
    this.#waiters.clear();
  }

  #drop(items: Array<{ log: boolean; span: boolean }>, reason: 'queue_full' | 'export_failed'): void {
    const logs = items.filter((i) => i.log).length;
    const spans = items.filter((i) => i.span).length;
    if (logs) this.stats('logs').dropped(logs, reason);
    if (spans) this.stats('traces').dropped(spans, reason);
  }

  /** One request's span (when traces are exported) and AccessLog (`body` is its JSON). O(1) plus encoding; never waits. */
  add(span: ItemSpan | undefined, log: boolean, accessLog: AccessLog, body: string): void {
    const signals = { log, span: !!span?.sampled && this.o.traces };
    if (this.#dead || this.#closed || this.#pending.length + this.#inFlight >= this.o.maxQueueSize) return this.#drop([signals], this.#dead || this.#closed ? 'export_failed' : 'queue_full');
    this.#pending.push(encodeItem(span, log, accessLog, body));
    this.#pendingSignals.push(signals);
    if (this.#pending.length >= POST_BATCH) this.#post();
    else this.#timer ??= setTimeout(() => this.#post(), Math.min(POST_DELAY_MS, this.o.scheduledDelayMillis)).unref();
  }

  #post(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#pending.length || this.#dead) return;
    const count = this.#pending.length;
    const text = this.#pending.join('\n');
    this.#pending = [];
    this.#pendingSignals = [];
    this.#inFlight += count;
    this.#worker.postMessage({ type: 'items', text, count } satisfies ToWorker);
  }

  #call(type: 'flush' | 'shutdown', timeoutMs: number): Promise<void> {
    this.#post();
    if (this.#dead) return Promise.resolve();
    const id = this.#nextId++;
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.#waiters.set(id, () => {
        clearTimeout(t);
        resolve();
      });
      this.#worker.postMessage({ type, id } satisfies ToWorker);
    });
  }

  /** Exports everything handed over so far (tests, shutdown). */
  flush(timeoutMs = 10_000): Promise<void> {
    return this.#call('flush', timeoutMs);
  }

  /** Flushes (bounded: the worker gives its exporters 2 s), then stops the worker. */
  shutdown(): Promise<void> {
    return (this.#closed ??= (async () => {
      await this.#call('shutdown', 3_000);
      this.#dead = true;
      await this.#worker.terminate();
    })());
  }
}
