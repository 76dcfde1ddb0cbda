// Pack-and-install check (run by .ci/run after the test suite): what a user gets from npm, not what the workspace
// resolves. Packs every package with pnpm (which turns `workspace:^` into real version ranges), installs the
// tarballs with plain npm into an empty folder with no workspace around it, then drives the installed binaries:
// `octelium-cluster start`, `octeliumctl apply` of a seed Service, `octelium connect --serve`, and one MCP call
// through the gateway with the MCP SDK client. Catches missing dependencies, files left out of `files`, and
// imports that only resolve to TypeScript sources.
//
//   node scripts/pack-install.mjs [--keep] [--image-context DIR]
//     --keep: leave the temp folder for inspection
//     --image-context DIR: on success, move the tarballs (DIR/packs) and the installed folder (DIR/app) there: the
//       build context of docker/*.Dockerfile (scripts/container-images.mjs), so the native build happens once
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { installEnv, pnpm } from './pnpm.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['shared', 'cluster', 'ctl', 'connect'];
const work = mkdtempSync(join(tmpdir(), 'octelium-pack-'));
const dirs = Object.fromEntries(['packs', 'app', 'data', 'admin-home', 'agent-home'].map((d) => [d, join(work, d)]));
for (const d of Object.values(dirs)) mkdirSync(d);
const children = [];
const t0 = Date.now();

const step = (msg) => console.log(`pack-install [${((Date.now() - t0) / 1000).toFixed(1)} s] ${msg}`);
function fail(msg) {
  console.error(`pack-install: FAILED: ${msg}\n(temp folder kept: ${work})`);
  for (const c of children) stop(c);
  process.exit(1);
}

// npm's cache stays the user's (it holds the registry tarballs); only the octelium login state gets its own HOME.
const npmCache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).stdout.trim();
function env(home = dirs['admin-home']) {
  const e = { ...installEnv(), HOME: home, npm_config_cache: npmCache, NODE_OPTIONS: '' };
  for (const k of Object.keys(e)) if (k.startsWith('OCTELIUM_')) delete e[k]; // only what the commands say
  return e;
}

function run(args, opts = {}) {
  const r = spawnSync('npx', ['--no-install', ...args], { cwd: dirs.app, env: env(opts.home), encoding: 'utf8', input: opts.input ?? '' });
  if (r.status !== 0) fail(`npx ${args.join(' ')} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A long-running `npx <bin>` in its own process group, so stopping it stops npx and the node it started. */
function start(args, opts = {}) {
  const c = spawn('npx', ['--no-install', ...args], { cwd: dirs.app, env: env(opts.home), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  c.out = '';
  c.stdout.on('data', (d) => (c.out += d));
  c.stderr.on('data', (d) => (c.out += d));
  c.name = args.slice(0, 2).join(' ');
  children.push(c);
  return c;
}
function stop(c) {
  try {
    if (c.exitCode === null) process.kill(-c.pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
}
async function waitFor(c, test, what, ms = 30_000) {
  for (const deadline = Date.now() + ms; ; ) {
    const v = test();
    if (v) return v;
    if (c.exitCode !== null) fail(`${c.name} exited ${c.exitCode} before ${what}:\n${c.out}`);
    if (Date.now() > deadline) fail(`${c.name}: no ${what} within ${ms / 1000} s:\n${c.out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// 1. Pack. Each package's prepack builds dist/ (JavaScript + declarations).
step('packing');
for (const p of PACKAGES) pnpm(['pack', '--pack-destination', dirs.packs], { cwd: join(ROOT, 'packages', p), quiet: true });
const tarballs = readdirSync(dirs.packs).map((f) => join(dirs.packs, f));
for (const t of tarballs) {
  const manifest = JSON.parse(spawnSync('tar', ['xzf', t, '-O', 'package/package.json'], { encoding: 'utf8' }).stdout);
  const files = spawnSync('tar', ['tzf', t], { encoding: 'utf8' }).stdout.split('\n');
  const deps = { ...manifest.dependencies, ...manifest.peerDependencies };
  if (Object.values(deps).some((v) => String(v).startsWith('workspace:'))) fail(`${manifest.name}: workspace: range left in ${JSON.stringify(deps)}`);
  if (deps.tsx) fail(`${manifest.name}: tsx is a runtime dependency`);
  if (manifest.private) fail(`${manifest.name} is private`);
  const ts = files.filter((f) => /\.tsx?$/.test(f) && !f.endsWith('.d.ts'));
  if (ts.length) fail(`${manifest.name}: TypeScript sources in the tarball: ${ts.join(', ')}`);
  if (!files.includes('package/dist/index.d.ts')) fail(`${manifest.name}: no dist/index.d.ts`);
}
step(`packed ${tarballs.map((t) => t.split('/').pop()).join(', ')}`);

// 2. Install with plain npm, no workspace anywhere above the folder.
writeFileSync(join(dirs.app, 'package.json'), JSON.stringify({ name: 'octelium-pack-install', private: true }));
const tInstall = Date.now();
const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: dirs.app, env: env(), encoding: 'utf8' });
if (inst.status !== 0) fail(`npm install exited ${inst.status}:\n${inst.stdout}${inst.stderr}`);
step(`npm install of the tarballs: ${((Date.now() - tInstall) / 1000).toFixed(1)} s`);
for (const bin of ['octelium-cluster', 'octeliumctl', 'octelium']) if (!existsSync(join(dirs.app, 'node_modules/.bin', bin))) fail(`no node_modules/.bin/${bin}`);
if (existsSync(join(dirs.app, 'node_modules/tsx'))) fail('tsx was installed: some package depends on it at run time');

try {
  // 3. The cluster, and an MCP server that only listens on loopback (the "behind NAT" one).
  const cluster = start(['octelium-cluster', 'start', '--port', '0', '--data-dir', dirs.data]);
  const mcp = start(['octelium-cluster', 'demo-mcp', '--port', '0']);
  const info = await waitFor(cluster, () => existsSync(join(dirs.data, 'cluster.json')) && JSON.parse(readFileSync(join(dirs.data, 'cluster.json'), 'utf8')), 'cluster.json');
  const mcpUrl = (await waitFor(mcp, () => mcp.out.match(/listening on (http:\/\/\S+)\/mcp/), 'listening line'))[1];
  step(`cluster listening on ${info.url}; demo MCP server on ${mcpUrl}`);

  // 4. Log in as root, apply the seed Service (pointed at the demo server) and its users.
  const bootstrap = readFileSync(join(dirs.data, 'bootstrap-token'), 'utf8').trim();
  run(['octelium', 'login', '--domain', info.domain, '--auth-token', bootstrap]);
  const seed = readFileSync(join(ROOT, 'packages/cluster/test/fixtures/seed/01-upstream-user.yaml'), 'utf8').replace('http://localhost:8080', mcpUrl);
  const users = ['mcp-01', 'client'].map((u) => `kind: User\nmetadata: {name: ${u}}\nspec: {type: WORKLOAD}\n---\n`).join('');
  writeFileSync(join(work, 'seed.yaml'), users + seed);
  const applied = run(['octeliumctl', 'apply', join(work, 'seed.yaml')]);
  if (!/service\/my-mcp created/.test(applied)) fail(`unexpected apply output:\n${applied}`);
  step(`octeliumctl apply: ${applied.trim().split('\n').join(', ')}`);
  const agentToken = JSON.parse(run(['octeliumctl', 'create', 'cred', 'mcp-01-auth', '--user', 'mcp-01', '--type', 'auth-token', '-o', 'json'])).authenticationToken;
  const oauth = JSON.parse(run(['octeliumctl', 'create', 'cred', 'client-oauth', '--user', 'client', '--type', 'oauth2', '-o', 'json']));

  // 5. The agent serves my-mcp through its outbound tunnel.
  const agent = start(['octelium', 'connect', '--domain', info.domain, '--auth-token', agentToken, '--serve', 'my-mcp'], { home: dirs['agent-home'] });
  await waitFor(agent, () => /serving my-mcp/.test(agent.out), '"serving my-mcp"');
  step('octelium connect --serve my-mcp: connected');

  // 6. One MCP call through the gateway, as the OAuth2 client.
  const tokenRes = await fetch(`${info.url}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: oauth.clientID, client_secret: oauth.clientSecret }),
  });
  const { access_token: accessToken } = await tokenRes.json();
  if (!accessToken) fail(`no access_token (HTTP ${tokenRes.status})`);
  const client = new Client({ name: 'pack-install', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${info.url}/svc/my-mcp/mcp`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } }));
  const res = await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } });
  await client.close();
  if (res.content?.[0]?.text !== '11') fail(`add 4+7 through the gateway returned ${JSON.stringify(res)}`);
  step('MCP tools/call add {a:4,b:7} through the gateway and the tunnel = 11');
} catch (err) {
  fail(err?.stack ?? String(err));
}
for (const c of children) stop(c);
await new Promise((r) => setTimeout(r, 300));
const imageContext = process.argv.includes('--image-context') ? process.argv[process.argv.indexOf('--image-context') + 1] : undefined;
if (imageContext) {
  rmSync(imageContext, { recursive: true, force: true });
  mkdirSync(imageContext, { recursive: true });
  rmSync(join(dirs.app, 'package-lock.json'), { force: true });
  // The same file system (both under the temp dir) makes this a rename; cpSync would copy ~200 MB.
  for (const d of ['packs', 'app']) renameSync(dirs[d], join(imageContext, d));
  step(`image build context in ${imageContext}`);
}
if (!process.argv.includes('--keep')) rmSync(work, { recursive: true, force: true });
step('OK');
