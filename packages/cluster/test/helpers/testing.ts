/**
 * Test support shared by every package's suites (exported as `@octelium-ts/cluster/testing`): real
 * clusters (in-process or as a child process) on 127.0.0.1:0 with real SQLite files, and real CLI runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient, type ClusterInfo, type Resource } from '@octelium-ts/shared';
import { startCluster, type Cluster, type ClusterOptions } from '../../src/cluster.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const SEED_DIR = join(REPO_ROOT, 'packages/cluster/test/fixtures/seed');

export function tempDir(prefix = 'octelium-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestCluster { cluster: Cluster; api: ApiClient; adminToken: string; dataDir: string; close(): Promise<void> }

/** An in-process cluster on an ephemeral port with a real SQLite file, and an admin API client. */
export async function startTestCluster(opts: { dataDir?: string; options?: Partial<ClusterOptions> } = {}): Promise<TestCluster> {
  const dataDir = opts.dataDir ?? tempDir();
  const cluster = await startCluster({ dataDir, port: 0, shutdownGraceMs: 500, ...opts.options });
  const api = new ApiClient({ domain: cluster.domain });
  const authToken = cluster.bootstrapToken ?? readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim();
  api.accessToken = (await api.login(authToken)).accessToken;
  return {
    cluster, api, adminToken: api.accessToken, dataDir,
    close: async () => {
      await cluster.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SseArrival { at: number; data: string }

/**
 * Reads an SSE body event by event (until it ends, or after `max` events), recording when each one arrived —
 * the measurement behind every "not buffered" test.
 */
export async function readSseArrivals(body: AsyncIterable<Buffer | string>, max = Infinity, onEvent?: (e: SseArrival) => void): Promise<SseArrival[]> {
  const out: SseArrival[] = [];
  let buf = '';
  for await (const chunk of body) {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const arrival = { at: Date.now(), data: event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n') };
      out.push(arrival);
      onEvent?.(arrival);
    }
    if (out.length >= max) break;
  }
  return out;
}

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs a CLI binary from the repo's node_modules/.bin as a real child process. */
export function runBin(bin: 'octeliumctl' | 'octelium' | 'octelium-cluster', args: string[], opts: { env?: Record<string, string | undefined>; input?: string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(join(REPO_ROOT, 'node_modules/.bin', bin), args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export interface BinProcess { proc: ChildProcess; output: () => string; waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>; stop(signal?: NodeJS.Signals): Promise<number | null> }

/** A long-running CLI (e.g. `octelium connect`) as a child process whose output can be awaited. */
export function startBin(bin: 'octeliumctl' | 'octelium' | 'octelium-cluster', args: string[], env: Record<string, string | undefined> = {}): BinProcess {
  const proc = spawn(join(REPO_ROOT, 'node_modules/.bin', bin), args, { env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc, output: () => out,
    async waitFor(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(re);
        if (m) return m;
        if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${bin} ${args.join(' ')}: no ${re} in output:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface ClusterProcess { proc: ChildProcess; info: ClusterInfo; dataDir: string; output: () => string; stop(signal?: NodeJS.Signals): Promise<number | null> }

/** `octelium-cluster start` as a child process; resolves once cluster.json says it is listening. */
export async function spawnCluster(dataDir: string, extraArgs: string[] = []): Promise<ClusterProcess> {
  const info = join(dataDir, 'cluster.json');
  rmSync(info, { force: true });
  const proc = spawn(join(REPO_ROOT, 'node_modules/.bin/octelium-cluster'), ['start', '--data-dir', dataDir, '--port', '0', ...extraArgs], {
    env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 20_000;
  while (!existsSync(info)) {
    if (proc.exitCode !== null) throw new Error(`cluster exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`cluster did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc, dataDir, info: JSON.parse(readFileSync(info, 'utf8')) as ClusterInfo, output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Logs in with the bootstrap token of a data dir and returns an admin API client. */
export async function adminClient(domain: string, dataDir: string): Promise<ApiClient> {
  const api = new ApiClient({ domain });
  api.accessToken = (await api.login(readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim())).accessToken;
  return api;
}

export function user(name: string, spec: Record<string, unknown> = {}): Resource {
  return { apiVersion: 'core/v1', kind: 'User', metadata: { name }, spec: { type: 'WORKLOAD', ...spec } };
}

export function service(name: string, spec: Record<string, unknown>): Resource {
  return { apiVersion: 'core/v1', kind: 'Service', metadata: { name }, spec: { mode: 'HTTP', isPublic: true, ...spec } };
}

/** An OAuth2 client-credentials access token for a new OAUTH2 Credential of `userName`. */
export async function oauth2Token(api: ApiClient, clusterURL: string, userName: string, credName = `${userName}-oauth2-${Math.random().toString(36).slice(2, 8)}`): Promise<string> {
  const { token } = await api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: credName }, spec: { type: 'OAUTH2', user: userName } });
  const res = await fetch(`${clusterURL}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: token.clientID!, client_secret: token.clientSecret! }),
  });
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export { startDemoMcpServer } from '../../src/demo/mcp-demo-server.js';
