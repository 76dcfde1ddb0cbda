/**
 * The README and docs examples as written, taken from the Markdown itself (so an edit that breaks them fails here):
 * the walk-through's YAML applies through `octeliumctl apply`, its policy lets a stock MCP SDK client start a session
 * (initialize, tools/list) and call a tool, the SDK snippet runs with only its placeholders filled in, and every
 * complete YAML document in the docs validates and lets an MCP session start (`policy test --method initialize`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  REPO_ROOT, adminClient, runBin, spawnCluster, startDemoMcpServer, tempDir, type ClusterProcess,
} from '@octelium-ts/cluster/testing';
import type { ApiClient } from '@octelium-ts/shared';

let cluster: ClusterProcess;
let api: ApiClient;
let mcp: Awaited<ReturnType<typeof startDemoMcpServer>>;
let env: Record<string, string>;

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

/** The fenced code blocks of a Markdown text with the given info string. */
function codeBlocks(md: string, lang: string): string[] {
  return [...md.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm'))].map((m) => m[1]);
}

/** The body of the `<<'YAML'` heredoc that follows `marker` in a shell block. */
function heredoc(block: string, marker: string): string {
  const start = block.indexOf(marker);
  assert.ok(start >= 0, `no ${marker} in the README`);
  const body = block.slice(block.indexOf('\n', start) + 1);
  return body.slice(0, body.indexOf('\nYAML\n') + 1);
}

before(async () => {
  const dataDir = tempDir();
  cluster = await spawnCluster(dataDir);
  api = await adminClient(cluster.info.domain, dataDir);
  env = { OCTELIUM_DOMAIN: cluster.info.domain, OCTELIUM_ACCESS_TOKEN: api.accessToken!, HOME: tempDir('octelium-home-') };
  mcp = await startDemoMcpServer({ host: '127.0.0.1' });
});
after(async () => {
  await mcp.close();
  await cluster.stop();
});

test('README walk-through: the YAML applies, and a stock MCP SDK client runs the SDK snippet through its policy', async () => {
  const walkthrough = codeBlocks(README, 'bash').find((b) => b.includes("cat > my-mcp.yaml <<'YAML'"))!;
  assert.ok(walkthrough, 'the walk-through block');
  assert.match(walkthrough, /octelium-cluster demo-mcp --port 3001/, 'the walk-through starts the MCP server its YAML points at');
  // As written, but pointed at where this test's demo MCP server listens instead of the fixed 3001.
  const yaml = heredoc(walkthrough, "cat > my-mcp.yaml <<'YAML'").replace('http://127.0.0.1:3001', mcp.url.replace(/\/mcp$/, ''));
  const file = join(tempDir(), 'my-mcp.yaml');
  writeFileSync(file, yaml);
  const applied = await runBin('octeliumctl', ['apply', file], { env });
  assert.equal(applied.code, 0, applied.stderr);
  assert.deepEqual(applied.stdout.trim().split('\n').sort(), ['service/my-mcp created', 'user/agent-1 created']);

  // `create cred … -o json` as in the walk-through, then the SDK snippet with its placeholders filled in.
  const cred = await runBin('octeliumctl', ['create', 'cred', 'agent-1-oauth', '--user', 'agent-1', '--type', 'oauth2', '-o', 'json'], { env });
  assert.equal(cred.code, 0, cred.stderr);
  const { clientID, clientSecret } = JSON.parse(cred.stdout) as { clientID: string; clientSecret: string };
  const snippet = codeBlocks(README, 'ts').find((b) => b.includes('StreamableHTTPClientTransport'))!;
  assert.ok(snippet, 'the SDK snippet');
  let filled = snippet.replaceAll('http://localhost:8090', cluster.info.url);
  filled = filled.replace("client_id: '…'", `client_id: '${clientID}'`).replace("client_secret: '…'", `client_secret: '${clientSecret}'`);
  assert.ok(!filled.includes('…'), 'every placeholder filled');
  // What the snippet did, for the test: the session (initialize happened in connect), tools/list, the call's result.
  filled += `\nconsole.log(JSON.stringify({ tools: (await client.listTools()).tools.map((t) => t.name), add: await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } }) }));\nawait client.close();\n`;
  // Inside the repository, so its imports resolve from the workspace's node_modules as they would from a project's.
  const script = join(REPO_ROOT, 'packages/ctl/test', `.readme-snippet-${process.pid}.mts`);
  writeFileSync(script, filled);
  try {
    const run = await runTs(script);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { tools: string[]; add: { content: Array<{ text: string }> } };
    assert.deepEqual(out.tools.sort(), ['add', 'subtract']);
    assert.equal(out.add.content[0].text, '11');
  } finally {
    rmSync(script, { force: true });
  }
  // The gateway saw the whole session ALLOWED: initialize, the notification, tools/list, tools/call.
  const logs = (await api.accessLogs({ service: 'my-mcp', limit: 50 })).items;
  const methods = logs.map((l) => (l.entry.info.http.request.bodyMap as { method?: string } | undefined)?.method).filter(Boolean);
  for (const m of ['initialize', 'notifications/initialized', 'tools/list', 'tools/call']) assert.ok(methods.includes(m), `${m} in ${methods.join(', ')}`);
  assert.ok(logs.every((l) => l.entry.common.status === 'ALLOWED'), logs.map((l) => `${l.entry.common.status} ${l.entry.common.reason?.type}`).join(', '));
});

/** `node --import tsx FILE`, without blocking this process's event loop (the demo MCP server runs in it). */
function runTs(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', file], { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('README: the NAT walk-through YAML applies as written', async () => {
  const block = codeBlocks(README, 'bash').find((b) => b.includes('npx octeliumctl apply - <<\'YAML\''))!;
  const r = await runBin('octeliumctl', ['apply', '-'], { env, input: heredoc(block, "apply - <<'YAML'") });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['service/laptop-mcp created', 'user/mcp-01 created']);
});

test('docs: every complete YAML example validates, and every Service in them lets an MCP session start', async () => {
  const docs = readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f));
  let checked = 0;
  const sessionsChecked: string[] = [];
  for (const rel of ['README.md', ...docs]) {
    const md = readFileSync(join(REPO_ROOT, rel), 'utf8');
    for (const block of codeBlocks(md, 'yaml')) {
      if (!/^kind: /m.test(block.split('\n')[0])) continue; // fragments (a rule, a plugin list) are not documents
      const r = await runBin('octeliumctl', ['apply', '-', '--dry-run', '--include-secret'], { env, input: block });
      assert.equal(r.code, 0, `${rel}:\n${block}\n${r.stderr}`);
      checked++;
      for (const doc of parseAllDocuments(block)) {
        const res = doc.toJS() as { kind: string; metadata: { name: string } };
        if (res.kind !== 'Service') continue;
        // The Service exists for policy test only while applied for real; apply, test, delete.
        const real = await runBin('octeliumctl', ['apply', '-'], { env, input: doc.toString() });
        if (real.code !== 0) continue; // e.g. refers to a federation member from another document: dry run above suffices
        for (const method of ['initialize', 'tools/list']) {
          const t = await runBin('octeliumctl', ['policy', 'test', '--service', res.metadata.name, '--user', 'agent-1', '--method', method], { env });
          assert.equal(t.code, 0, `${rel}: service/${res.metadata.name} must let an MCP session start (${method}):\n${t.stdout}${t.stderr}`);
        }
        sessionsChecked.push(`${rel}: ${res.metadata.name}`);
        await runBin('octeliumctl', ['delete', 'svc', res.metadata.name], { env });
      }
    }
  }
  assert.ok(checked >= 5, `${checked} documents checked`);
  assert.ok(sessionsChecked.length >= 3, `Services whose policy was tested: ${sessionsChecked.join(', ')}`);
});
