import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OcteliumError, type Resource } from '@octelium-ts/shared';
import { openDatabase } from '../src/store/db.js';
import { ResourceStore } from '../src/store/resource-store.js';
import { adminClient, service, spawnCluster, tempDir } from './helpers/testing.js';

const group = (name: string, labels?: Record<string, string>): Resource => ({ apiVersion: 'core/v1', kind: 'Group', metadata: { name, ...(labels ? { labels } : {}) }, spec: {} });

test('resourceVersion: a stale update fails with 409 CONFLICT; uid and createdAt are kept', () => {
  const dir = tempDir();
  const store = new ResourceStore(openDatabase(dir));
  const created = store.create(group('g1'));
  const { resource: updated, changed } = store.update({ ...group('g1', { a: 'b' }), metadata: { ...group('g1', { a: 'b' }).metadata, resourceVersion: created.metadata.resourceVersion } });
  assert.equal(changed, true);
  assert.equal(updated.metadata.uid, created.metadata.uid);
  assert.equal(updated.metadata.createdAt, created.metadata.createdAt);
  assert.ok(Number(updated.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
  assert.throws(
    () => store.update({ ...group('g1', { a: 'c' }), metadata: { name: 'g1', labels: { a: 'c' }, resourceVersion: created.metadata.resourceVersion } }),
    (e: OcteliumError) => e.code === 'OCT_ERR_CONFLICT' && e.httpStatus === 409,
  );
  assert.equal(store.update(group('g1', { a: 'b' })).changed, false, 'same content is unchanged');
});

test('change feed: events arrive after commit; a failed transaction rolls memory back and emits nothing', () => {
  const store = new ResourceStore(openDatabase(':memory:'));
  const events: string[] = [];
  store.watch((c) => events.push(`${c.type} ${c.resource.metadata.name}`));
  store.create(group('a'));
  assert.throws(() => store.transaction(() => {
    store.create(group('b'));
    store.create(group('a')); // already exists
  }));
  assert.equal(store.get('Group', 'b'), undefined);
  store.delete('Group', 'a');
  assert.deepEqual(events, ['ADDED a', 'DELETED a']);
});

test('restart on the same data dir keeps every resource (SIGTERM exits 0)', async () => {
  const dir = tempDir();
  const first = await spawnCluster(dir);
  const api = await adminClient(first.info.domain, dir);
  await api.apply({ resources: [service('kept', { config: { upstream: { url: 'http://127.0.0.1:9' } } }), group('kept-group')] });
  assert.equal(await first.stop('SIGTERM'), 0);
  const second = await spawnCluster(dir);
  try {
    const api2 = await adminClient(second.info.domain, dir);
    assert.equal((await api2.get('Service', 'kept')).metadata.name, 'kept');
    assert.equal((await api2.get('Group', 'kept-group')).metadata.name, 'kept-group');
    assert.doesNotMatch(second.output(), /Bootstrap auth token/, 'bootstrap happens only once');
  } finally {
    await second.stop();
  }
});

test('kill -9 during a large apply loses no acknowledged resource', async () => {
  const dir = tempDir();
  const proc = await spawnCluster(dir);
  const api = await adminClient(proc.info.domain, dir);
  const acknowledged: string[] = [];
  let killed = false;
  const writer = (async () => {
    for (let batch = 0; !killed; batch++) {
      const resources = Array.from({ length: 50 }, (_, i) => service(`s-${batch}-${i}`, { config: { upstream: { url: 'http://127.0.0.1:9' } } }));
      try {
        await api.apply({ resources });
        acknowledged.push(...resources.map((r) => r.metadata.name));
      } catch {
        return; // the cluster died mid-request: that batch was never acknowledged
      }
    }
  })();
  while (acknowledged.length < 500) await new Promise((r) => setTimeout(r, 10));
  killed = true;
  proc.proc.kill('SIGKILL');
  await writer;
  await proc.stop();
  const again = await spawnCluster(dir);
  try {
    const api2 = await adminClient(again.info.domain, dir);
    const names = new Set((await api2.list('Service')).items.map((s) => s.metadata.name));
    const lost = acknowledged.filter((n) => !names.has(n));
    assert.ok(acknowledged.length >= 500);
    assert.deepEqual(lost, []);
  } finally {
    await again.stop();
  }
});

test('data lives in one SQLite file in WAL mode', () => {
  const dir = tempDir();
  const db = openDatabase(dir);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.name, join(dir, 'octelium.db'));
});
