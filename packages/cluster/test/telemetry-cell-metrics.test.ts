import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { CellCounter, CellHistogram } from '../src/telemetry/cell-metrics.js';

// The gateway's per-request counter and histogram replace prom-client's for speed; a scraper must not see a difference.
type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
/** The fields a JSON consumer reads (prom-client adds `exemplar: null` to its own histogram values). */
const plain = (ms: Json) => ms.map((m) => ({ ...m, values: m.values.map((v) => ({ metricName: (v as { metricName?: string }).metricName, labels: v.labels, value: v.value })) }));

describe('cell metrics render exactly as prom-client metrics', () => {
  const BUCKETS = [0.001, 0.01, 0.1, 1];
  const observations: Array<[number, string, string]> = [
    [0.0005, 'svc-a', 'ALLOWED'], [0.02, 'svc-a', 'ALLOWED'], [5, 'svc-a', 'ALLOWED'], [0.01, 'svc-b', 'DENIED'],
    [0.001, 'svc-a', 'ALLOWED'], [Number.NaN, 'svc-a', 'ALLOWED'], [0.2, 'we"ird\\name\n', 'DENIED'],
  ];

  test('histogram: same text and JSON for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const cell = new CellHistogram({ name: 'h_seconds', help: 'help text', labelNames: ['service', 'decision'], buckets: BUCKETS, registry: ours });
    const ref = new Histogram({ name: 'h_seconds', help: 'help text', labelNames: ['service', 'decision'], buckets: BUCKETS, registers: [theirs] });
    for (const [v, service, decision] of observations) {
      cell.observe(v, service, decision);
      // prom-client throws on NaN; ours ignores it (a request must never fail on a metric).
      if (Number.isFinite(v)) ref.observe({ service, decision }, v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(plain(await ours.getMetricsAsJSON()), plain(await theirs.getMetricsAsJSON()));
    assert.match(await ours.metrics(), /h_seconds_bucket\{le="\+Inf",service="svc-a",decision="ALLOWED"\} 4/);
  });

  test('counter: same text and JSON; reset empties it', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const cell = new CellCounter({ name: 'c_total', help: 'count', labelNames: ['service', 'code'], registry: ours });
    const ref = new Counter({ name: 'c_total', help: 'count', labelNames: ['service', 'code'], registers: [theirs] });
    for (const [service, code] of [['a', '200'], ['a', '200'], ['b', '403'], ['a', '502']]) {
      cell.inc(service, code);
      ref.inc({ service, code });
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(plain(await ours.getMetricsAsJSON()), plain(await theirs.getMetricsAsJSON()));
    assert.match(await ours.metrics(), /c_total\{service="a",code="200"\} 2/);
    ours.resetMetrics();
    theirs.resetMetrics();
    assert.equal(await ours.metrics(), await theirs.metrics());
  });
});
