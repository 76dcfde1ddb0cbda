/**
 * Real Docker for the managed-container tests (../shared/docs/toolchain.md): the daemon `.ci/run` starts
 * (scripts/ci-components.sh), an MCP server image built locally FROM scratch (no public registry is reachable), and
 * a private `docker-registry` with htpasswd auth on 127.0.0.1. Under CI=true a missing component fails the test;
 * elsewhere it is a loud SKIP.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import Docker from 'dockerode';
import bcrypt from 'bcryptjs';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
export const IMAGE_REPO = 'octelium-test/mcp-server';

/** A Docker client when a daemon answers; otherwise fails (CI) or skips the test with a loud line. */
/** A test or a suite's hook context: hooks (`before`) have a name but no `skip`; their tests skip themselves. */
type SkippableContext = Pick<TestContext, 'name'> & { skip?: TestContext['skip'] };

export async function requireDocker(t: SkippableContext): Promise<Docker | undefined> {
  const docker = new Docker();
  try {
    await docker.ping();
    return docker;
  } catch (err) {
    const why = `no Docker daemon answers at /var/run/docker.sock (${(err as { code?: string }).code ?? (err as Error).message}); run scripts/ci-components.sh`;
    if (process.env.CI === 'true') throw new Error(`Docker is required under CI=true: ${why}`);
    console.log(`\n*** SKIP: ${t.name}: ${why} ***\n`);
    t.skip?.(`SKIP: ${why}`);
    return undefined;
  }
}

export function requireBinary(t: SkippableContext, path: string, pkg: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    const why = `${path} is missing (apt-get install -y ${pkg}; scripts/ci-components.sh does it)`;
    if (process.env.CI === 'true') throw new Error(`${pkg} is required under CI=true: ${why}`);
    console.log(`\n*** SKIP: ${t.name}: ${why} ***\n`);
    t.skip?.(`SKIP: ${why}`);
    return false;
  }
}

function followProgress(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
    const failed = events?.find((e) => e.error);
    if (err || failed) reject(err ?? new Error(failed!.error));
    else resolve();
  }));
}

/** The node binary and the shared libraries `ldd` lists for it: what a FROM scratch image needs to run it. */
function nodeFiles(): string[] {
  const node = realpathSync(process.execPath);
  const libs = execFileSync('ldd', [node], { encoding: 'utf8' }).split('\n')
    .map((l) => l.match(/(\/\S+)\s+\(0x/)?.[1]).filter((p): p is string => Boolean(p));
  return [node, ...libs];
}

let imagePromise: Promise<string> | undefined;

/**
 * Builds the MCP test image once per process (FROM scratch + node + its libraries + the bundled server) and caches
 * it across runs by the hash of its content: the tag is `octelium-test/mcp-server:<hash>`.
 */
export function mcpImage(docker: Docker): Promise<string> {
  return (imagePromise ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oct-img-'));
    try {
      await build({
        entryPoints: [join(here, '../fixtures/container-image/server.ts')], bundle: true, platform: 'node', format: 'esm',
        target: 'node20', outfile: join(dir, 'rootfs/app/server.mjs'), logLevel: 'error',
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      });
      const files = nodeFiles();
      const hash = createHash('sha256');
      hash.update(readFileSync(join(dir, 'rootfs/app/server.mjs')));
      for (const f of files) hash.update(`${f}:${statSync(f).size}:${statSync(f).mtimeMs}`);
      const tag = `${IMAGE_REPO}:${hash.digest('hex').slice(0, 12)}`;
      try {
        await docker.getImage(tag).inspect();
        return tag;
      } catch { /* not built yet */ }
      for (const f of files) {
        mkdirSync(join(dir, 'rootfs', dirname(f)), { recursive: true });
        copyFileSync(f, join(dir, 'rootfs', f));
      }
      // /usr/bin/node → the real path, so the ENTRYPOINT does not depend on where this machine keeps node.
      writeFileSync(join(dir, 'Dockerfile'), [
        'FROM scratch', 'COPY rootfs/ /', 'ENV PORT=8080', 'EXPOSE 8080',
        `ENTRYPOINT ["${realpathSync(process.execPath)}", "/app/server.mjs"]`, '',
      ].join('\n'));
      const src: string[] = [];
      const walk = (d: string) => { for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : src.push(relative(dir, join(d, e.name))); };
      walk(dir);
      await followProgress(docker, await docker.buildImage({ context: dir, src }, { t: tag, rm: true, forcerm: true }));
      return tag;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })());
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Registry {
  host: string;
  username: string;
  password: string;
  /** Tags `image` as `<host>/<repo>:<tag>`, pushes it with the credentials, then removes the local tag (so a runtime must pull it). */
  push(docker: Docker, image: string, repoTag: string): Promise<string>;
  stop(): Promise<void>;
  process: ChildProcess;
}

/** A real `docker-registry` (distribution 2.8) with htpasswd (bcrypt) auth on 127.0.0.1, in its own temp dir. */
export async function startRegistry(username = 'ci-user', password = `pw-${Math.random().toString(36).slice(2)}-secret`): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), 'oct-registry-'));
  const port = await freePort();
  writeFileSync(join(dir, 'htpasswd'), `${username}:${bcrypt.hashSync(password, 10).replace(/^\$2b\$/, '$2y$')}\n`);
  writeFileSync(join(dir, 'config.yml'), [
    'version: 0.1', 'log: {level: warn}', `storage: {filesystem: {rootdirectory: ${join(dir, 'data')}}, delete: {enabled: true}}`,
    `http: {addr: "127.0.0.1:${port}"}`, `auth: {htpasswd: {realm: octelium-test, path: ${join(dir, 'htpasswd')}}}`, '',
  ].join('\n'));
  const proc = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c) => { stderr = (stderr + c).slice(-4000); });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const status = await fetch(`http://${host}/v2/`).then((r) => r.status, () => 0);
    if (status === 401) break;
    if (i > 100 || proc.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host, username, password, process: proc,
    async push(docker, image, repoTag) {
      const [repo, tag] = repoTag.split(':');
      const ref = `${host}/${repo}:${tag}`;
      await docker.getImage(image).tag({ repo: `${host}/${repo}`, tag });
      const pushed = (await docker.getImage(ref).push({ authconfig: { username, password, serveraddress: host } } as never)) as unknown as NodeJS.ReadableStream;
      await followProgress(docker, pushed);
      await docker.getImage(ref).remove({ noprune: true });
      return ref;
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Containers of one test's cluster (by its octelium.io/cluster label), removed by id at the end. */
export async function removeClusterContainers(docker: Docker, clusterId: string): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`octelium.io/cluster=${clusterId}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return list.length;
}
