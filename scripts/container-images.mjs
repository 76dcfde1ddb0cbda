// Container image check (run by .ci/run after the pack-and-install check): builds docker/cluster.Dockerfile and
// docker/connect.Dockerfile on a base assembled here (FROM scratch + this machine's node binary + the libraries
// `ldd` lists: no public image can be pulled on CI), runs the cluster image and reaches it from the host: /healthz,
// HEALTHCHECK healthy, the API with the bootstrap token, the process not root. The agent image must start its CLI.
//
//   node scripts/container-images.mjs [--context DIR]   (DIR from `pack-install.mjs --image-context DIR`; without it,
//                                                        pack-install runs first)
// Needs Docker (scripts/ci-components.sh installs and starts it). Without it: a loud SKIP, or a failure under CI=true.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const tag = `ci-${process.pid}`;
const images = { base: `octelium-local-base:${tag}`, cluster: `octelium-cluster:${tag}`, connect: `octelium-connect:${tag}` };
const containers = [];
const t0 = Date.now();
const step = (msg) => console.log(`container-images [${((Date.now() - t0) / 1000).toFixed(1)} s] ${msg}`);

function docker(args, opts = {}) {
  const r = spawnSync('docker', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.status !== 0 && !opts.allowFail) fail(`docker ${args.join(' ')} exited ${r.status}:\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return r;
}
function cleanup() {
  for (const id of containers) spawnSync('docker', ['rm', '-f', id], { stdio: 'ignore' });
  spawnSync('docker', ['rmi', '-f', ...Object.values(images)], { stdio: 'ignore' });
}
function fail(msg) {
  console.error(`container-images: FAILED: ${msg}`);
  cleanup();
  process.exit(1);
}

if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) {
  const msg = 'Docker is not available (no `docker` or no daemon answers; scripts/ci-components.sh installs and starts it)';
  if (process.env.CI === 'true') fail(msg);
  console.log(`\n*** SKIP container images: ${msg} ***\n`);
  process.exit(0);
}

// 1. The build context: tarballs + their install for this platform (pack-install's output) + install.mjs.
let context = process.argv.includes('--context') ? process.argv[process.argv.indexOf('--context') + 1] : undefined;
const ownContext = !context;
if (!context) {
  context = mkdtempSync(join(tmpdir(), 'octelium-image-ctx-'));
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/pack-install.mjs'), '--image-context', context], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
copyFileSync(join(ROOT, 'docker/install.mjs'), join(context, 'install.mjs'));

// 2. A local base: node and its shared libraries in an otherwise empty image (about 100 MB).
const baseDir = mkdtempSync(join(tmpdir(), 'octelium-base-'));
const put = (from, to = from) => {
  mkdirSync(join(baseDir, 'rootfs', dirname(to)), { recursive: true });
  copyFileSync(realpathSync(from), join(baseDir, 'rootfs', to));
};
put(process.execPath, '/usr/local/bin/node');
const ldd = spawnSync('ldd', [process.execPath], { encoding: 'utf8' }).stdout;
for (const m of ldd.matchAll(/(\/\S+) \(0x/g)) put(m[1]); // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and the loader
mkdirSync(join(baseDir, 'rootfs/tmp'), { recursive: true });
chmodSync(join(baseDir, 'rootfs/tmp'), 0o1777);
writeFileSync(join(baseDir, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin\n');
docker(['build', '-q', '-t', images.base, baseDir]);
rmSync(baseDir, { recursive: true, force: true });
step(`local base ${images.base} (node ${process.version} + ${[...ldd.matchAll(/(\/\S+) \(0x/g)].length} libraries)`);

// 3. Both images, on that base for building and for running.
for (const name of ['cluster', 'connect']) {
  docker(['build', '-q', '-f', join(ROOT, `docker/${name}.Dockerfile`), '--build-arg', `BASE=${images.base}`, '--build-arg', `BUILDER=${images.base}`, '-t', images[name], context]);
  const size = docker(['image', 'inspect', '-f', '{{.Size}}', images[name]]).stdout.trim();
  step(`built ${images[name]} (${(Number(size) / 1e6).toFixed(0)} MB)`);
}

// 4. Run the cluster image, published on a loopback port of the host, and reach it.
const id = docker(['run', '-d', '--label', `octelium.io/ci=${tag}`, '--health-interval', '1s', '-p', '127.0.0.1::8090', images.cluster]).stdout.trim();
containers.push(id);
const port = docker(['port', id, '8090/tcp']).stdout.trim().split('\n')[0].split(':').pop();
const base = `http://127.0.0.1:${port}`;
let health;
for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
  health = docker(['inspect', '-f', '{{.State.Status}} {{.State.Health.Status}}', id]).stdout.trim();
  if (health === 'running healthy' || !health.startsWith('running')) break;
}
if (health !== 'running healthy') fail(`cluster container is "${health}":\n${docker(['logs', id], { allowFail: true }).stdout}${docker(['logs', id], { allowFail: true }).stderr}`);
const healthz = await fetch(`${base}/healthz`);
if (!healthz.ok) fail(`GET ${base}/healthz from the host: HTTP ${healthz.status}`);
step(`cluster container healthy; ${base}/healthz answers ${healthz.status} on the host`);

const uid = docker(['exec', id, 'node', '-p', 'process.getuid()']).stdout.trim();
if (uid === '0') fail('the cluster runs as root');
const token = docker(['exec', id, 'node', '-p', "require('fs').readFileSync('/data/bootstrap-token', 'utf8').trim()"]).stdout.trim();
const login = await fetch(`${base}/api/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ authToken: token }) });
const session = await login.json().catch(() => ({}));
if (!session.accessToken) fail(`login with the bootstrap token: HTTP ${login.status} ${JSON.stringify(session)}`);
const users = await fetch(`${base}/api/v1/users`, { headers: { authorization: `Bearer ${session.accessToken}` } });
const list = await users.json().catch(() => ({}));
if (!list.items?.some((u) => u.metadata?.name === 'root')) fail(`GET /api/v1/users: HTTP ${users.status} ${JSON.stringify(list)}`);
step(`API from the host: logged in with the bootstrap token, users: ${list.items.map((u) => u.metadata.name).join(', ')}; runs as uid ${uid}`);

// 5. The agent image starts its CLI as a non-root user.
const help = docker(['run', '--rm', images.connect, 'connect', '--help']);
if (!/--serve/.test(help.stdout)) fail(`octelium connect --help in the agent image:\n${help.stdout}${help.stderr}`);
const agentUid = docker(['run', '--rm', '--entrypoint', 'node', images.connect, '-p', 'process.getuid()']).stdout.trim();
if (agentUid === '0') fail('the agent runs as root');
step(`agent image runs \`octelium connect --help\` as uid ${agentUid}`);

cleanup();
if (ownContext || process.argv.includes('--remove-context')) rmSync(context, { recursive: true, force: true });
step('OK');
