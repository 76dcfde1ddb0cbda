/**
 * One store suite, two engines (docs/scaling.md): SQLite in a data dir and a real PostgreSQL 15. Two opened stores
 * on one database stand for two processes (--workers siblings on SQLite, replicas on PostgreSQL).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OcteliumError, type Resource } from '@octelium-ts/shared';
import { openStore, joinCluster } from '../src/store/open-store.js';
import { ResourceStore, type Change } from '../src/store/resource-store.js';
import { TokenStore } from '../src/auth/tokens.js';
import { KeyRing } from '../src/oauth/keyring.js';
import { AuthorizationState, RefreshTokens } from '../src/oauth/grants.js';
import { PgSql } from '../src/store/postgres/sync-pg.js';
import { migrate, PG_MIGRATIONS } from '../src/store/postgres/migrations.js';
import { tempDir } from './helpers/testing.js';
import { pair, storeEngines } from './helpers/store-engines.js';

const group = (name: string, labels?: Record<string, string>, resourceVersion?: string): Resource => ({
  apiVersion: 'core/v1', kind: 'Group', metadata: { name, ...(labels ? { labels } : {}), ...(resourceVersion ? { resourceVersion } : {}) }, spec: {},
});
const isCode = (code: string) => (e: unknown) => e instanceof OcteliumError && e.code === code;

const { engines, postgres } = storeEngines('store engine suite on PostgreSQL');

for (const engine of engines) {
  describe(`store on ${engine.name}`, () => {
    const skip = () => !engine.available();

    test('create, update, delete; a stale resourceVersion is a 409 that names the fix', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const s = await openStore(await engine.location());
      try {
        const store = new ResourceStore(s.feed);
        const created = store.create(group('g'));
        assert.throws(() => store.create(group('g')), isCode('OCT_ERR_ALREADY_EXISTS'));
        const { resource: updated } = store.update(group('g', { a: '1' }, created.metadata.resourceVersion));
        assert.ok(Number(updated.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
        assert.throws(() => store.update(group('g', { a: '2' }, created.metadata.resourceVersion)), (e: OcteliumError) => isCode('OCT_ERR_CONFLICT')(e) && e.httpStatus === 409 && /get it again and retry/.test(e.message));
        assert.equal(store.update(group('g', { a: '1' })).changed, false);
        store.delete('Group', 'g');
        assert.equal(store.get('Group', 'g'), undefined);
      } finally {
        await s.close();
      }
    });

    test('a write through one process reaches the other with remote events; its own writes are not echoed', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const sa = new ResourceStore(a.feed), sb = new ResourceStore(b.feed);
        const seenA: Change[] = [], seenB: Change[] = [];
        sa.watch((c) => seenA.push(c));
        sb.watch((c) => seenB.push(c));
        sa.create(group('x'));
        sa.update(group('x', { v: '2' }));
        sa.create(group('y'));
        sa.delete('Group', 'y');
        sb.refresh();
        assert.equal(sb.get('Group', 'x')?.metadata.labels?.v, '2');
        assert.equal(sb.get('Group', 'y'), undefined);
        assert.deepEqual(seenB.map((c) => `${c.type} ${c.resource.metadata.name} ${c.remote}`), ['ADDED x true', 'MODIFIED x true', 'ADDED y true', 'DELETED y true']);
        sa.refresh();
        assert.equal(seenA.length, 4, 'A saw its own four changes once, none echoed back');
        assert.ok(seenA.every((c) => !c.remote));
        // A transaction catches up under the write lock first: B acts on A's state without a refresh of its own.
        sa.update(group('x', { v: '3' }));
        const { resource } = sb.update(group('x', { v: '4' }));
        assert.equal(resource.metadata.labels?.v, '4');
      } finally {
        await close();
      }
    });

    test('two processes updating from the same resourceVersion: one wins, the other gets 409, nothing is lost', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const sa = new ResourceStore(a.feed), sb = new ResourceStore(b.feed);
        const base = sa.create(group('c'));
        sb.refresh();
        const rv = base.metadata.resourceVersion;
        sa.update(group('c', { by: 'a' }, rv));
        assert.throws(() => sb.update(group('c', { by: 'b' }, rv)), isCode('OCT_ERR_CONFLICT'));
        sb.refresh();
        assert.equal(sb.get('Group', 'c')?.metadata.labels?.by, 'a');
        // Both create the same name: the second is ALREADY_EXISTS (409), not an overwrite.
        sa.create(group('d', { by: 'a' }));
        assert.throws(() => sb.create(group('d', { by: 'b' })), isCode('OCT_ERR_ALREADY_EXISTS'));
      } finally {
        await close();
      }
    });

    test('tokens, signing keys and refresh tokens are shared; one signing key however many start at once', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const ta = new TokenStore(a.feed), tb = new TokenStore(b.feed);
        const [ka, kb] = await Promise.all([KeyRing.open(a.feed), KeyRing.open(b.feed)]);
        kb.jwks();
        a.feed.catchUp();
        b.feed.catchUp();
        assert.equal(ka.jwks().keys.length, 1);
        assert.deepEqual(ka.jwks(), kb.jwks());
        const secret = ta.issue({ type: 'access', userName: 'u', sessionName: 's' });
        // No refresh: a token the mirror lacks makes it catch up once, so a sibling's new token works at once.
        assert.equal(tb.lookup(secret)?.userName, 'u');
        tb.revoke((r) => r.userName === 'u');
        a.feed.catchUp();
        assert.equal(ta.lookup(secret), undefined);
        // A token signed by A verifies on B, also right after a rotation on A that B has not caught up with.
        const jwt = await ka.sign({ sub: 'x' }, 60, 'http://issuer');
        assert.equal((await kb.verify(jwt, 'http://issuer'))?.sub, 'x');
        ka.rotate();
        const rotated = await ka.sign({ sub: 'y' }, 60, 'http://issuer');
        assert.equal((await kb.verify(rotated, 'http://issuer'))?.sub, 'y');
        // Refresh tokens: one redemption wins across processes.
        const ra = new RefreshTokens(a.sql), rb = new RefreshTokens(b.sql);
        const rt = ra.issue({ clientId: 'c', sessionName: 's', expiresAt: Date.now() + 60_000 });
        assert.equal(rb.markRotated(rt), true);
        assert.equal(ra.markRotated(rt), false);
      } finally {
        await close();
      }
    });

    test('an authorization flow crosses processes: consent stored by one, answered once, its code redeemed once', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const sa = new AuthorizationState(a.sql, 2), sb = new AuthorizationState(b.sql, 2);
        const p = sa.addPending({ clientId: 'c', clientName: 'C', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'x' }, 'addr-1');
        assert.equal(sb.getPending(p.id)?.csrf, p.csrf);
        assert.equal(sb.recordFailure(p.id), 1);
        assert.equal(sa.getPending(p.id)?.failures, 1);
        // Per-address cap, counted across processes: the address's own oldest request goes.
        sb.addPending({ clientId: 'c', clientName: 'C', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'y' }, 'addr-1');
        sa.addPending({ clientId: 'c', clientName: 'C', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'z' }, 'addr-1');
        assert.equal(sb.getPending(p.id), undefined);
        const code = sa.issueCode({ clientId: 'c', redirectUri: 'http://127.0.0.1/cb', codeChallenge: 'x', userName: 'u', grantExpiresAt: Date.now() + 60_000, authTime: 0 });
        assert.equal(sb.code(code)?.userName, 'u');
        assert.deepEqual([sb.redeemCode(code), sa.redeemCode(code)], [true, false]);
        sb.setCodeSession(code, 'grant-session');
        assert.equal(sa.code(code)?.sessionName, 'grant-session');
        assert.equal(sa.code(code)?.used, true);
      } finally {
        await close();
      }
    });

    test('a process behind the pruned log reloads whole tables', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const sa = new ResourceStore(a.feed), sb = new ResourceStore(b.feed);
        const gone = sa.create(group('gone'));
        sb.refresh();
        sa.create(group('new'));
        sa.delete('Group', gone.metadata.name);
        a.feed.prune(-10);
        const events: string[] = [];
        sb.watch((c) => events.push(`${c.type} ${c.resource.metadata.name}`));
        sb.refresh();
        assert.deepEqual(events.sort(), ['ADDED new', 'DELETED gone']);
      } finally {
        await close();
      }
    });

    test('a replica of another domain or cluster secret refuses to join', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const secret = joinCluster(a, 'one.example:443');
        assert.equal(joinCluster(b, 'one.example:443'), secret);
        if (engine.name === 'postgres') assert.throws(() => joinCluster(b, 'two.example:443'), /belongs to the cluster with --domain one\.example:443/);
        assert.throws(() => joinCluster(b, 'one.example:443', 'not-the-secret'), /does not match the cluster secret/);
      } finally {
        await close();
      }
    });
  });
}

describe('PostgreSQL engine failures', () => {
  test('migrations run once however many replicas start at once', async (t) => {
    const pg = postgres();
    if (!pg) return t.skip('no PostgreSQL');
    const url = await pg.createDatabase();
    const sqls = [new PgSql(url), new PgSql(url), new PgSql(url)];
    try {
      const applied = sqls.map((s) => migrate(s));
      assert.equal(applied.reduce((x, y) => x + y, 0), PG_MIGRATIONS.length);
      assert.equal(Number(sqls[0].get<{ n: number }>('SELECT COUNT(*) AS n FROM schema_migrations')!.n), PG_MIGRATIONS.length);
    } finally {
      await Promise.all(sqls.map((s) => s.close()));
    }
  });

  test('nothing listening: opening fails at once with an error that names the store', async () => {
    const t0 = Date.now();
    await assert.rejects(openStore({ dataDir: tempDir(), url: 'postgres://octelium@127.0.0.1:1/none' }), /cannot use the cluster store \(PostgreSQL at 127\.0\.0\.1:1\/none\): .*ECONNREFUSED/);
    assert.ok(Date.now() - t0 < 3000);
  });

  test('PostgreSQL restarted: writes fail fast with 503 while it is down, then work again without reopening', async (t) => {
    const pg = postgres();
    if (!pg) return t.skip('no PostgreSQL');
    const s = await openStore({ dataDir: tempDir(), url: await pg.createDatabase() });
    try {
      const store = new ResourceStore(s.feed);
      store.create(group('before'));
      pg.stop();
      const t0 = Date.now();
      assert.throws(() => store.create(group('during')), (e: OcteliumError) => isCode('OCT_ERR_UNREACHABLE')(e) && e.httpStatus === 503);
      assert.throws(() => store.create(group('during')), isCode('OCT_ERR_UNREACHABLE'));
      assert.ok(Date.now() - t0 < 2500, `failed in ${Date.now() - t0} ms`);
      assert.equal(store.get('Group', 'before')?.metadata.name, 'before', 'reads keep being served from memory');
      assert.equal(store.get('Group', 'during'), undefined);
      pg.start();
      await new Promise((r) => setTimeout(r, 1100)); // past the fail-fast second
      store.create(group('after'));
      assert.ok(store.get('Group', 'after'));
    } finally {
      pg.start(); // idempotent: a failed assertion above must not leave it down for the next test
      await s.close();
    }
  });
});
