/** Shared by the telemetry*.test.ts suites: a cluster with telemetry options, polling, a Prometheus text parser. */
import { rmSync } from 'node:fs';
import { ApiClient } from '@octelium-ts/shared';
import { startCluster } from '../src/cluster.js';
import type { TelemetryOptions } from '../src/telemetry/index.js';
import { tempDir, type TestCluster } from './helpers/testing.js';

/** startTestCluster, with ClusterOptions.telemetry. */
export async function startTelemetryCluster(telemetry: TelemetryOptions): Promise<TestCluster> {
  const dataDir = tempDir();
  const cluster = await startCluster({ dataDir, port: 0, telemetry });
  const api = new ApiClient({ domain: cluster.domain });
  api.accessToken = (await api.login(cluster.bootstrapToken!)).accessToken;
  return {
    cluster, api, adminToken: api.accessToken, dataDir,
    close: async () => {
      await cluster.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function waitUntil<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Sample { name: string; labels: Record<string, string>; value: number }

/**
 * Prometheus text exposition format 0.0.4: `# HELP`/`# TYPE` comments, then `name{l="v",…} value [ts]`.
 * Label values may contain escaped `\\`, `\"` and `\n`. Throws on a line it cannot read, so a malformed
 * exposition fails the test instead of being skipped.
 */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
    let lm: RegExpExecArray | null;
    let consumed = 0;
    while ((lm = re.exec(body))) {
      labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = re.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad labels in: ${line}`);
    const v = m[4];
    out.push({ name: m[1], labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : v === 'NaN' ? NaN : Number(v) });
  }
  return out;
}

/** Sum of the samples called `name` whose labels include `match`. */
export function metricValue(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}
