/**
 * Fault injection, storage half (issue 18 §5): `octelium-cluster start` child processes SIGKILLed in the middle of
 * applies and of AccessLog writes, and a data dir on a tiny tmpfs that fills up. Each test restarts a real cluster
 * on the same data dir and checks what survived, through the API, `octeliumctl logs` and SQLite's own
 * `PRAGMA integrity_check` (read-only, with better-sqlite3). The streaming half is fault-injection.test.ts.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import type { AccessLog, ApiClient, Resource } from '@octelium-ts/shared';
import {
  adminClient, oauth2Token, runBin, service, spawnCluster, tempDir, user, type ClusterProcess,
} from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

const allowAll = { inlinePolicies: [{ spec: { rules: [{ effect: 'ALLOW', condition: { match: 'true' } }] } }] };
const clusters: ClusterProcess[] = [];
const upstreams: TestUpstream[] = [];
const dirs: string[] = [];
const mounts: string[] = [];

after(async () => {
  for (const c of clusters) await c.stop('SIGKILL');
  for (const u of upstreams) await u.close();
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch (err) {
      console.error(`umount ${m}:`, (err as Error).message);
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<{ c: ClusterProcess; api: ApiClient }> {
  const c = await spawnCluster(dataDir);
  clusters.push(c);
  return { c, api: await adminClient(c.info.domain, dataDir) };
}

async function jsonUpstream(): Promise<TestUpstream> {
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  upstreams.push(up);
  return up;
}

/** SQLite's own verdict on the file, plus the invariant the store relies on at start: the version counter is ahead. */
function checkDatabase(dataDir: string) {
  const db = new Database(join(dataDir, 'octelium.db'), { readonly: true, fileMustExist: true });
  try {
    const logs = db.prepare('SELECT id, json FROM access_logs ORDER BY seq').all() as Array<{ id: string; json: string }>;
    const parsed = logs.map((r) => JSON.parse(r.json) as AccessLog); // throws on a torn row
    return {
      integrity: db.pragma('integrity_check', { simple: true }),
      counter: Number((db.prepare("SELECT value FROM meta WHERE key = 'resourceVersion'").get() as { value: string }).value),
      maxVersion: (db.prepare('SELECT MAX(resource_version) AS v FROM resources').get() as { v: number }).v,
      resources: (db.prepare('SELECT json FROM resources').all() as Array<{ json: string }>).map((r) => JSON.parse(r.json) as Resource),
      logs: parsed,
      logIds: new Set(logs.map((r) => r.id)),
    };
  } finally {
    db.close();
  }
}

test('SIGKILL during applies: every apply that succeeded survives, the one in flight is all there or not at all', { timeout: 30_000 }, async () => {
  const dataDir = tempDir('octelium-fi-apply-');
  dirs.push(dataDir);
  const { c, api } = await start(dataDir);
  // 30 resources per apply, padded so each apply takes long enough that three loops always have one in flight.
  const PER = 15;
  const batch = (b: number): Resource[] => Array.from({ length: PER }, (_, i) => [
    { ...user(`ka${b}-u${i}`), metadata: { name: `ka${b}-u${i}`, annotations: { pad: 'x'.repeat(2000) } } },
    service(`ka${b}-s${i}`, { config: { upstream: { url: `http://127.0.0.1:9/${b}` } }, authorization: allowAll }),
  ]).flat();
  const outcome = new Map<number, 'ok' | 'failed'>();
  let next = 0;
  let killed = false;
  const loop = async () => {
    while (!killed) {
      const b = next++;
      try {
        await api.apply({ resources: batch(b) });
        outcome.set(b, 'ok');
        if ([...outcome.values()].filter((o) => o === 'ok').length >= 8 && !killed) {
          killed = true;
          // The other loops' applies are on the wire, but on a fast store all of them may already be answered and
          // waiting in the client's buffer. So one more goes out now, and the cluster dies 2 ms later, while it is
          // being handled (an apply of 30 padded resources takes tens of ms here).
          const last = next++;
          const lastDone = api.apply({ resources: batch(last) }).then(() => outcome.set(last, 'ok'), () => outcome.set(last, 'failed'));
          await new Promise((r) => setTimeout(r, 2));
          c.proc.kill('SIGKILL');
          await lastDone;
        }
      } catch {
        outcome.set(b, 'failed');
      }
    }
  };
  await Promise.all([loop(), loop(), loop()]);
  assert.equal(await c.stop(), null, 'the cluster died of SIGKILL');
  const ok = [...outcome].filter(([, o]) => o === 'ok').map(([b]) => b);
  const inFlight = [...outcome].filter(([, o]) => o === 'failed').map(([b]) => b);
  assert.ok(inFlight.length >= 1, 'at least one apply was in flight when the cluster died');

  const raw = checkDatabase(dataDir);
  assert.equal(raw.integrity, 'ok');
  // Otherwise a restarted store would hand out resourceVersions that were already used.
  assert.ok(raw.counter >= raw.maxVersion, `resourceVersion counter ${raw.counter} is behind a stored version ${raw.maxVersion}`);

  const again = await start(dataDir);
  const names = new Set([...(await again.api.list('User')).items, ...(await again.api.list('Service')).items].map((r) => r.metadata.name));
  const present = (b: number) => batch(b).filter((r) => names.has(r.metadata.name)).length;
  for (const b of ok) assert.equal(present(b), 2 * PER, `apply #${b} returned success before the kill, so all of it is stored`);
  // ApplyResponse promises all-or-nothing (one SQLite transaction): a cut apply left everything or nothing.
  for (const b of inFlight) assert.ok([0, 2 * PER].includes(present(b)), `apply #${b} was cut: ${present(b)} of ${2 * PER} resources stored`);
  const svc = await again.api.get('Service', `ka${ok[0]}-s0`);
  assert.equal((svc.spec as { config: { upstream: { url: string } } }).config.upstream.url, `http://127.0.0.1:9/${ok[0]}`);
  // The store goes on from where it was: a new write gets a version above every stored one.
  const fresh = await again.api.apply({ resources: [user('after-crash')] });
  assert.equal(fresh.results[0].action, 'created');
  assert.ok(Number((await again.api.get('User', 'after-crash')).metadata.resourceVersion) > raw.maxVersion);
  await again.c.stop();
});

test('SIGKILL under gateway load: AccessLogs stay readable and uncorrupted, the database passes integrity_check', { timeout: 30_000 }, async () => {
  const dataDir = tempDir('octelium-fi-logs-');
  dirs.push(dataDir);
  const up = await jsonUpstream();
  const { c, api } = await start(dataDir);
  await api.apply({ resources: [user('loader'), service('load', { config: { upstream: { url: up.url } }, authorization: allowAll })] });
  const token = await oauth2Token(api, c.info.url, 'loader');
  const doneAt = new Map<number, number>();
  let n = 0;
  let killedAt = 0;
  const loop = async () => {
    while (!killedAt) {
      const i = n++;
      try {
        const res = await request(`${c.info.url}/svc/load/r/${i}`, { headers: { authorization: `Bearer ${token}` } });
        await res.body.dump();
        if (res.statusCode === 200) doneAt.set(i, Date.now());
      } catch {
        /* in flight at the kill */
      }
    }
  };
  const loops = Promise.all([loop(), loop(), loop(), loop()]);
  await new Promise((r) => setTimeout(r, 1500));
  killedAt = Date.now();
  c.proc.kill('SIGKILL');
  await loops;
  assert.equal(await c.stop(), null);
  assert.ok(doneAt.size > 50, `only ${doneAt.size} requests completed under load`);

  const raw = checkDatabase(dataDir);
  assert.equal(raw.integrity, 'ok');
  assert.equal(raw.logIds.size, raw.logs.length, 'no AccessLog stored twice');
  // Logs are queued for up to 50 ms and committed by the writer thread; one that finished well before the kill is on
  // disk (WAL with synchronous=NORMAL survives a process crash). The last instants before a kill may be lost.
  const paths = new Set(raw.logs.map((l) => l.entry.info.http.request.path));
  const older = [...doneAt].filter(([, at]) => at < killedAt - 750).map(([i]) => i);
  assert.ok(older.length > 0);
  assert.deepEqual(older.filter((i) => !paths.has(`/r/${i}`)), [], 'AccessLogs of requests that finished 750 ms before the crash are stored');

  const again = await start(dataDir);
  const cli = await runBin('octeliumctl', ['logs', '--service', 'load', '--limit', '10000', '-o', 'json'], {
    env: { OCTELIUM_DOMAIN: again.c.info.domain, OCTELIUM_ACCESS_TOKEN: again.api.accessToken },
  });
  assert.equal(cli.code, 0, cli.stderr);
  const lines = cli.stdout.trim().split('\n');
  const logs = lines.map((l) => JSON.parse(l) as AccessLog);
  assert.equal(logs.length, raw.logs.filter((l) => l.entry.common.serviceRef?.name === 'load').length);
  for (const l of logs) {
    assert.equal(l.kind, 'AccessLog');
    assert.equal(l.entry.common.status, 'ALLOWED');
    assert.match(l.entry.info.http.request.path, /^\/r\/\d+$/);
    assert.equal(l.entry.info.http.response.code, 200);
  }
  await again.c.stop();
});

/** Mounts a tmpfs of `size` as a fresh data dir, or says why not (not root, no mount). */
function mountTmpfs(t: TestContext, size: string): string | undefined {
  const why = process.getuid?.() !== 0 ? `not root (uid ${process.getuid?.()})` : undefined;
  const dir = tempDir('octelium-fi-full-');
  dirs.push(dir);
  let reason = why;
  if (!reason) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
      mounts.push(dir);
      return dir;
    } catch (err) {
      reason = `mount -t tmpfs failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}`;
    }
  }
  // CI runs as root: there a skip would hide the only disk-full coverage we have, so it fails instead.
  console.log(`SKIP: disk-full fault injection needs a tmpfs data dir: ${reason}`);
  if (process.env.CI === 'true') assert.fail(`disk-full test skipped under CI=true: ${reason}`);
  t.skip(reason);
  return undefined;
}

/** Writes zeros until the filesystem says ENOSPC. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

async function applyRaw(url: string, token: string, resources: Resource[]) {
  const res = await request(`${url}/api/v1/apply`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ resources }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string; message: string }; results?: unknown[] } };
}

test('disk full on the data dir: applies get 507 naming the cause, the gateway serves on, and everything recovers once space is freed', { timeout: 30_000 }, async (t) => {
  const dir = mountTmpfs(t, '3m');
  if (!dir) return;
  const up = await jsonUpstream();
  const { c, api } = await start(dir);
  await api.apply({ resources: [user('fuller'), user('before-full'), service('full-svc', { config: { upstream: { url: up.url } }, authorization: allowAll })] });
  const token = await oauth2Token(api, c.info.url, 'fuller');
  const filler = join(dir, 'filler');
  fill(filler);

  // A write on a full disk: a clear 507 with the cause, and nothing of it kept (the apply holds two resources).
  const full = await applyRaw(c.info.url, api.accessToken!, [user('during-full'), service('during-full-svc', { config: { upstream: { url: up.url } } })]);
  assert.equal(full.status, 507, JSON.stringify(full.body));
  assert.equal(full.body.error?.code, 'OCT_ERR_INSUFFICIENT_STORAGE');
  assert.match(full.body.error!.message, /disk space.*SQLITE_FULL/);
  await assert.rejects(api.get('User', 'during-full'), { code: 'OCT_ERR_NOT_FOUND' });

  // The gateway does not need the disk: requests are served while their AccessLogs cannot be written.
  for (let i = 0; i < 20; i++) {
    const res = await request(`${c.info.url}/svc/full-svc/g/${i}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  }
  const deadline = Date.now() + 5000;
  while (!c.output().includes('access log writer: cannot write AccessLogs (SQLITE_FULL')) {
    assert.ok(Date.now() < deadline, `the AccessLog write failure was never reported:\n${c.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(c.proc.exitCode, null, 'still running');
  assert.equal((await api.list('User')).items.some((u) => u.metadata.name === 'before-full'), true);

  rmSync(filler);
  assert.equal((await api.apply({ resources: [user('after-full')] })).results.length, 1);
  const res = await request(`${c.info.url}/svc/full-svc/g/after`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  // A clean stop writes what waited; the writer thread outlived its failures, so there is someone to write it.
  assert.equal(await c.stop(), 0, c.output());
  assert.match(c.output(), /access log writer: writing again/);

  const db = checkDatabase(dir);
  assert.equal(db.integrity, 'ok');
  const again = await start(dir);
  const users = new Set((await again.api.list('User')).items.map((u) => u.metadata.name));
  assert.ok(users.has('before-full') && users.has('after-full'), 'committed before and after the full disk');
  assert.ok(!users.has('during-full'), 'the apply that failed left nothing');
  await assert.rejects(again.api.get('Service', 'during-full-svc'), { code: 'OCT_ERR_NOT_FOUND' });
  const logged = new Set((await again.api.accessLogs({ service: 'full-svc', limit: 1000 })).items.map((l) => l.entry.info.http.request.path));
  const missing = [...Array.from({ length: 20 }, (_, i) => `/g/${i}`), '/g/after'].filter((p) => !logged.has(p));
  assert.deepEqual(missing, [], 'AccessLogs of requests served while the disk was full are written once it is not');
  await again.c.stop();
});
