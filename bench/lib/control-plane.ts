/**
 * Control plane: apply N Services (1 000 / 10 000) through the API (one POST /apply) and through the CLI
 * (`octeliumctl apply <file>`: process start, YAML parse + validation, one API call), each against a cluster child
 * process; baselines in the same run: the same apply again (all unchanged) and the CLI's bare start-up. Cold start:
 * `octelium-cluster start` from spawn to cluster.json written (listening), on a fresh and on a populated data dir,
 * against the bare cost of starting node and the tsx CLI wrapper.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '@octelium-ts/shared';
import { runBin } from '@octelium-ts/cluster/testing';
import { spawnClusterProc } from './cluster.js';
import { REPO_ROOT, log, median, sleep } from './util.js';

function services(prefix: string, count: number): Resource[] {
  return Array.from({ length: count }, (_, i) => ({
    apiVersion: 'core/v1', kind: 'Service', metadata: { name: `${prefix}-${i}` },
    spec: {
      mode: 'HTTP', isPublic: true,
      config: { upstream: { url: `http://127.0.0.1:${10000 + (i % 50000)}` }, http: { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 100000 } } },
      authorization: { inlinePolicies: [{ spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.request.http.bodyMap.params.name in ["add", "subtract"]' } }] } }] },
    },
  }) as Resource);
}

/** `count` Services with the seed's buffering + CEL policy, as one multi-document YAML file (also bench/apply.ts). */
export function yamlOf(prefix: string, count: number): string {
  return Array.from({ length: count }, (_, i) => `kind: Service
metadata:
  name: ${prefix}-${i}
spec:
  mode: HTTP
  isPublic: true
  config:
    upstream: {url: "http://127.0.0.1:${10000 + (i % 50000)}"}
    http: {enableRequestBuffering: true, body: {mode: JSON, maxRequestSize: 100000}}
  authorization:
    inlinePolicies:
      - spec:
          rules:
            - effect: ALLOW
              condition: {match: 'ctx.request.http.bodyMap.params.name in ["add", "subtract"]'}
`).join('---\n');
}

export interface ApplyPoint { count: number; via: 'api' | 'cli'; ms: number; unchangedMs: number; ratio: number }
export interface ColdStart { dataDir: 'fresh' | 'populated'; resources: number; listeningMs: number; runs: number[] }
export interface ControlPlaneResult {
  apply: ApplyPoint[];
  cliStartupMs: number;
  coldStart: ColdStart[];
  baselines: { nodeMs: number; tsxCliMs: number };
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** ms from spawn until a file appears (then the process is stopped, and waited for) or until it exits 0. */
export function spawnTimed(cmd: string, args: string[], until: { file?: string; exit?: boolean }): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    let seen: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    p.on('exit', (code) => {
      if (timer) clearInterval(timer);
      if (seen !== undefined) return resolve(seen);
      if (until.exit && code === 0) return resolve(performance.now() - t0);
      reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`));
    });
    if (until.file) {
      const file = until.file;
      timer = setInterval(() => {
        if (seen === undefined && existsSync(file)) {
          seen = performance.now() - t0;
          clearInterval(timer);
          p.kill('SIGTERM');
        }
      }, 2);
    }
  });
}

export async function runControlPlane(o: { counts: number[]; repeats: number }): Promise<ControlPlaneResult> {
  const apply: ApplyPoint[] = [];
  const cluster = await spawnClusterProc({ keepDataDir: true });
  let cliStartupMs = NaN;
  try {
    const env = { OCTELIUM_DOMAIN: cluster.domain, OCTELIUM_ACCESS_TOKEN: cluster.api.accessToken };
    cliStartupMs = median(await Promise.all([0, 1, 2].map(async () => (await timed(() => runBin('octeliumctl', ['--help'], { env })))[0])));
    for (const count of o.counts) {
      const resources = services(`api${count}`, count);
      const [ms] = await timed(() => cluster.api.apply({ resources }));
      const [unchangedMs] = await timed(() => cluster.api.apply({ resources }));
      apply.push({ count, via: 'api', ms, unchangedMs, ratio: ms / unchangedMs });
      log(`apply ${count} Services via API: ${ms.toFixed(0)} ms (unchanged re-apply ${unchangedMs.toFixed(0)} ms)`);
      const file = join(cluster.dataDir, `cli-${count}.yaml`);
      writeFileSync(file, yamlOf(`cli${count}`, count));
      const cli = async () => {
        const [t, r] = await timed(() => runBin('octeliumctl', ['apply', file], { env }));
        if (r.code !== 0) throw new Error(`octeliumctl apply: ${r.stderr}`);
        return t;
      };
      const cliMs = await cli();
      const cliUnchanged = await cli();
      apply.push({ count, via: 'cli', ms: cliMs, unchangedMs: cliUnchanged, ratio: cliMs / cliUnchanged });
      log(`apply ${count} Services via CLI: ${cliMs.toFixed(0)} ms (unchanged ${cliUnchanged.toFixed(0)} ms; CLI start-up alone ${cliStartupMs.toFixed(0)} ms)`);
    }
  } finally {
    await cluster.stop();
  }
  const populated = cluster.dataDir;
  const resources = o.counts.reduce((a, b) => a + b, 0) * 2;

  const bin = join(REPO_ROOT, 'node_modules/.bin/octelium-cluster');
  const coldStart: ColdStart[] = [];
  const fresh: number[] = [];
  const again: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'octelium-bench-cold-'));
    fresh.push(await spawnTimed(bin, ['start', '--data-dir', dir, '--port', '0'], { file: join(dir, 'cluster.json') }));
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(populated, 'cluster.json'), { force: true });
    again.push(await spawnTimed(bin, ['start', '--data-dir', populated, '--port', '0'], { file: join(populated, 'cluster.json') }));
    await sleep(300);
  }
  coldStart.push({ dataDir: 'fresh', resources: 0, listeningMs: median(fresh), runs: fresh });
  coldStart.push({ dataDir: 'populated', resources, listeningMs: median(again), runs: again });
  rmSync(populated, { recursive: true, force: true });
  const nodeRuns: number[] = [];
  const tsxRuns: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    nodeRuns.push(await spawnTimed(process.execPath, ['-e', '0'], { exit: true }));
    tsxRuns.push(await spawnTimed(join(REPO_ROOT, 'node_modules/.bin/octeliumctl'), ['--help'], { exit: true }));
  }
  log(`cold start: fresh ${median(fresh).toFixed(0)} ms, populated (${resources} Services) ${median(again).toFixed(0)} ms; node -e 0 ${median(nodeRuns).toFixed(0)} ms, octeliumctl --help ${median(tsxRuns).toFixed(0)} ms`);
  return { apply, cliStartupMs, coldStart, baselines: { nodeMs: median(nodeRuns), tsxCliMs: median(tsxRuns) } };
}
