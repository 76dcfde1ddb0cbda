/**
 * The OTLP worker thread: encodes the export items the request thread posts (otlp-json.ts), batches them per
 * signal and sends them to the receiver (otlp.ts), away from the request thread, which only builds the items.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeItems, type FromWorker, type ToWorker } from './export-item.js';
import { createOtlpPipeline } from './otlp.js';
import type { ResolvedTelemetryOptions } from './options.js';

const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);
const pipe = createOtlpPipeline(workerData as NonNullable<ResolvedTelemetryOptions['otlp']>, (signal) => ({
  dropped: (n, reason) => send({ type: 'stats', signal, dropped: n, reason }),
  exported: (n) => send({ type: 'stats', signal, exported: n }),
}));

port.on('message', async (m: ToWorker) => {
  if (m.type === 'items') {
    const items = decodeItems(m.text);
    let failed = m.count - items.length;
    for (const it of items) {
      try {
        pipe.record(it);
      } catch {
        failed++; // one bad item must not stop the worker
      }
    }
    if (failed) send({ type: 'stats', signal: 'logs', dropped: failed, reason: 'export_failed' });
    send({ type: 'ack', n: m.count });
  } else if (m.type === 'flush') {
    await pipe.flush();
    send({ type: 'done', id: m.id });
  } else if (m.type === 'shutdown') {
    await pipe.shutdown();
    send({ type: 'done', id: m.id });
  }
});
