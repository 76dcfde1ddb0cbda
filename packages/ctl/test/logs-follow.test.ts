import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { matchesAccessLog, type AccessLog, type AccessLogFilter } from '@octelium-ts/shared';
import { REPO_ROOT, oauth2Token, runBin, service, startDemoMcpServer, startTestCluster, tempDir, user, type TestCluster } from '@octelium-ts/cluster/testing';

let tc: TestCluster;
let mcp: Awaited<ReturnType<typeof startDemoMcpServer>>;
let env: Record<string, string>;
let subscribers = 0;
const tokens: Record<string, string> = {};

/** `octeliumctl logs -f …` as a real child process; stdout is read line by line as it arrives. */
class Tail {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  #buf = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly args: string[]) {
    this.proc = spawn(join(REPO_ROOT, 'node_modules/.bin/octeliumctl'), ['logs', '-f', ...args], { env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: 'pipe' });
    this.proc.stdout.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.lines.push(this.#buf.slice(0, i));
        this.#buf = this.#buf.slice(i + 1);
      }
    });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d));
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }

  async waitForLines(n: number, timeoutMs = 15_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n) {
      if (Date.now() > deadline) throw new Error(`logs ${this.args.join(' ')}: ${this.lines.length}/${n} lines; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.lines;
  }

  async stop(): Promise<number | null> {
    this.proc.kill('SIGTERM');
    return this.exited;
  }
}

async function mcpClient(svc: string, who: string): Promise<Client> {
  const client = new Client({ name: 'logs-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${tokens[who]}` } } }));
  return client;
}

/** The traffic every tail watches: allowed and denied calls by two users on two Services. */
async function traffic(): Promise<void> {
  for (const [svc, who] of [['mcp-a', 'alice'], ['mcp-a', 'bob'], ['mcp-b', 'alice'], ['mcp-b', 'bob'], ['mcp-a', 'alice']]) {
    const client = await mcpClient(svc, who);
    await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }).catch(() => undefined); // bob's are denied (403)
    await client.listTools();
    await client.close();
  }
}

/**
 * The logs since `since`, once no new one has arrived for 300 ms: an MCP client's standalone GET stream is
 * logged when the gateway sees it close, a moment after client.close() returns.
 */
async function settledLogs(since: number): Promise<AccessLog[]> {
  let n = -1;
  for (;;) {
    const all = tc.cluster.accessLogs.query({}, 10_000).slice(since);
    if (all.length === n) return all;
    n = all.length;
    await new Promise((r) => setTimeout(r, 300));
  }
}

before(async () => {
  tc = await startTestCluster();
  mcp = await startDemoMcpServer({ jsonResponse: true });
  env = { OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_ACCESS_TOKEN: tc.adminToken, HOME: tempDir('octelium-home-') };
  const buffered = { enableRequestBuffering: true, body: { mode: 'JSON' } };
  await tc.api.apply({
    resources: [
      user('alice'),
      user('bob', { authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'rest', effect: 'ALLOW', condition: { match: 'true' } }, { name: 'no-calls', effect: 'DENY', condition: { match: 'has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "tools/call"' } }] } }] } }),
      service('mcp-a', { config: { upstream: { url: mcp.url }, http: buffered } }),
      service('mcp-b', { config: { upstream: { url: mcp.url }, http: buffered } }),
    ],
  });
  for (const who of ['alice', 'bob']) tokens[who] = await oauth2Token(tc.api, tc.cluster.url, who);
  // Count live-tail subscriptions, so a test starts making requests only once every tail is listening.
  const logs = tc.cluster.accessLogs;
  const subscribe = logs.subscribe.bind(logs);
  logs.subscribe = (fn) => {
    subscribers++;
    return subscribe(fn);
  };
});
after(async () => {
  await mcp.close();
  await tc.close();
});

describe('octeliumctl logs -f (live tail over SSE)', () => {
  test('filters --service / --user + --status DENIED / --method tools/call: each tail gets exactly its logs, in order', async () => {
    const cases: Array<{ args: string[]; filter: AccessLogFilter }> = [
      { args: ['--service', 'mcp-a'], filter: { service: 'mcp-a' } },
      { args: ['--user', 'bob', '--status', 'DENIED'], filter: { user: 'bob', status: 'DENIED' } },
      { args: ['--method', 'tools/call'], filter: { method: 'tools/call' } },
      { args: ['--service', 'mcp-b', '--method', 'tools/list'], filter: { service: 'mcp-b', method: 'tools/list' } },
      { args: [], filter: {} },
    ];
    const before = subscribers;
    const tails = cases.map((c) => new Tail(['-o', 'json', ...c.args]));
    try {
      const deadline = Date.now() + 15_000;
      while (subscribers < before + tails.length) {
        if (Date.now() > deadline) throw new Error(`tails not subscribed: ${tails.map((t) => t.stderr).join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const since = tc.cluster.accessLogs.query({}, 10_000).length;
      await traffic();
      const all = await settledLogs(since);
      assert.ok(all.length >= 20, `traffic made ${all.length} logs`);

      for (const [i, c] of cases.entries()) {
        const expected = all.filter((l) => matchesAccessLog(l, c.filter)).map((l) => l.metadata.id);
        assert.ok(expected.length > 0, `${c.args.join(' ')} matches something`);
        if (c.args.length) assert.ok(expected.length < all.length, `${c.args.join(' ')} filters something out`);
        const got = (await tails[i].waitForLines(expected.length)).map((line) => JSON.parse(line) as AccessLog);
        assert.deepEqual(got.map((l) => l.metadata.id), expected, `tail ${c.args.join(' ')}: same logs, same order`);
      }
      // Spot checks of what the filters mean.
      const denied = tails[1].lines.map((l) => JSON.parse(l) as AccessLog);
      assert.equal(denied.length, 2);
      assert.ok(denied.every((l) => l.entry.common.status === 'DENIED' && l.entry.common.userRef?.name === 'bob' && l.entry.info.http.response.code === 403));
      const calls = tails[2].lines.map((l) => JSON.parse(l) as AccessLog);
      assert.equal(calls.length, 5, 'five tools/call, allowed or not');
      assert.deepEqual(calls.map((l) => l.entry.common.status), ['ALLOWED', 'DENIED', 'ALLOWED', 'DENIED', 'ALLOWED']);
      // Nothing more arrives for a tail than it should (give a late extra line a chance to show up).
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(tails[1].lines.length, 2);
    } finally {
      const codes = await Promise.all(tails.map((t) => t.stop()));
      assert.deepEqual(codes, tails.map(() => 0), 'SIGTERM ends the tail cleanly');
    }
  });

  test('without -o json and without a TTY: the same table as `logs` without -f, a header then one row per log', async () => {
    const before = subscribers;
    const filter = ['--status', 'DENIED', '--method', 'tools/call', '--service', 'mcp-b'];
    const tail = new Tail(filter);
    try {
      while (subscribers === before) await new Promise((r) => setTimeout(r, 20));
      const client = await mcpClient('mcp-b', 'bob');
      await assert.rejects(client.callTool({ name: 'subtract', arguments: { a: 5, b: 1 } }));
      await client.close();
      const [header, line] = await tail.waitForLines(2);
      assert.match(header, /^TIME\s+STATUS\s+CODE\s+USER\s+SERVICE\s+METHOD\s+PATH\s+MCP$/);
      assert.match(line, /^\d\d:\d\d:\d\d\.\d{3}\s+DENIED\s+403\s+bob\s+mcp-b\s+POST\s+\/mcp\s+tools\/call subtract$/);
      assert.equal(line.indexOf('DENIED'), header.indexOf('STATUS'), 'rows line up with the header');
      // `logs` without -f prints the very same lines (newest last): same header, same row.
      const past = await runBin('octeliumctl', ['logs', ...filter], { env });
      const lines = past.stdout.trimEnd().split('\n');
      assert.equal(lines[0], header);
      assert.equal(lines.at(-1), line);
    } finally {
      await tail.stop();
    }
  });
});
