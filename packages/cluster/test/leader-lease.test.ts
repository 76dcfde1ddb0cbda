/**
 * The leader lease (replicas/leader-lease.ts) and the endpoints the leading reconciler shares (containers/
 * endpoint-feed.ts) on both store engines: SQLite in a data dir and a real PostgreSQL 15. Two opened stores on one
 * database stand for two processes, as in store-engines.test.ts. Time is passed in, so expiry needs no sleeping.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openStore } from '../src/store/open-store.js';
import type { Sql } from '../src/store/sql.js';
import { LeaderLease } from '../src/replicas/leader-lease.js';
import { ContainerEndpoints, type WorkloadView } from '../src/containers/endpoints.js';
import { EndpointFeed } from '../src/containers/endpoint-feed.js';
import { pair, storeEngines } from './helpers/store-engines.js';

const { engines } = storeEngines('leader lease on PostgreSQL');

const TIMING = { heartbeatMs: 100, leaseMs: 500 };

/** A lease whose elections and depositions are recorded in order. */
function lease(sql: Sql, holder: string, name = 'job', timing = TIMING): { lease: LeaderLease; events: string[] } {
  const events: string[] = [];
  return { lease: new LeaderLease(sql, name, holder, timing, { onElected: () => events.push('elected'), onDeposed: () => events.push('deposed') }), events };
}

const holderOf = (sql: Sql, name = 'job') => sql.get<{ holder: string }>('SELECT holder FROM leader_leases WHERE name = ?', [name])?.holder;

const view = (url: string): WorkloadView => ({ state: 'Running', replicas: 1, ready: 1, message: '', endpoints: [{ id: url.slice(-4), url }] });

for (const engine of engines) {
  describe(`leader lease on ${engine.name}`, () => {
    const skip = () => !engine.available();

    test('acquire, renew, contention, takeover once expired, release for a quick takeover', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        const A = lease(a.sql, 'replica-a'), B = lease(b.sql, 'replica-b');
        const t0 = Date.now();
        A.lease.beat(t0);
        B.lease.beat(t0);
        assert.deepEqual([A.lease.held, B.lease.held], [true, false], 'the first to beat acquires; the other finds it held');
        assert.equal(holderOf(a.sql), 'replica-a');
        // Renewed within the lease: still held, and B still cannot take it although the first expiry has passed.
        A.lease.beat(t0 + 300);
        B.lease.beat(t0 + 600);
        assert.deepEqual([A.lease.held, B.lease.held], [true, false]);
        assert.equal(A.lease.confirm(t0 + 350), true);
        assert.equal(B.lease.confirm(t0 + 350), false);
        // A stops renewing (kill -9): once its expiry (t0 + 800) has passed, B takes over on its next beat.
        B.lease.beat(t0 + 801);
        assert.equal(B.lease.held, true);
        assert.equal(holderOf(a.sql), 'replica-b');
        // A comes back: it finds B holding and is deposed; its fence says no.
        A.lease.beat(t0 + 850);
        assert.equal(A.lease.held, false);
        assert.equal(A.lease.confirm(t0 + 850), false);
        assert.deepEqual(A.events, ['elected', 'deposed']);
        assert.deepEqual(B.events, ['elected']);
        // Released on a clean stop: A acquires on its next beat, long before B's lease (t0 + 1301) would run out.
        B.lease.release();
        assert.equal(holderOf(a.sql), undefined);
        A.lease.beat(t0 + 900);
        assert.equal(A.lease.held, true);
        B.lease.beat(t0 + 5000);
        assert.equal(B.lease.held, false, 'a released lease never competes again');
        assert.deepEqual(A.events, ['elected', 'deposed', 'elected']);
        // Leases of different jobs are independent.
        const other = lease(b.sql, 'replica-b', 'other-job');
        other.lease.beat(t0 + 900);
        assert.equal(other.lease.held, true);
      } finally {
        await close();
      }
    });

    test('two processes beating at the same instant: exactly one holds the lease', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, close } = await pair(engine);
      try {
        for (let round = 0; round < 20; round++) {
          const name = `race-${round}`;
          const now = Date.now();
          const A = lease(a.sql, 'replica-a', name), B = lease(b.sql, 'replica-b', name);
          // Which one goes first alternates; the statement decides, not the order (the other finds a live holder).
          for (const l of round % 2 ? [A, B] : [B, A]) l.lease.beat(now);
          assert.equal(Number(A.lease.held) + Number(B.lease.held), 1, `round ${round}`);
          assert.equal(holderOf(a.sql, name), A.lease.held ? 'replica-a' : 'replica-b');
        }
      } finally {
        await close();
      }
    });

    test('the store stops answering: the holder steps down a heartbeat before anyone could take over', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const s = await openStore(await engine.location());
      try {
        let down = false;
        const flaky: Sql = Object.assign(Object.create(s.sql) as Sql, {
          run: (q: string, p?: readonly unknown[]) => {
            if (down) throw new Error('store unreachable');
            return s.sql.run(q, p);
          },
        });
        const A = lease(flaky, 'replica-a');
        const t0 = Date.now();
        A.lease.beat(t0);
        down = true;
        A.lease.beat(t0 + TIMING.leaseMs - TIMING.heartbeatMs - 1);
        assert.equal(A.lease.held, true, 'a missed renewal alone does not depose');
        A.lease.beat(t0 + TIMING.leaseMs - TIMING.heartbeatMs);
        assert.equal(A.lease.held, false);
        assert.deepEqual(A.events, ['elected', 'deposed']);
      } finally {
        await s.close();
      }
    });

    test('endpoints published by the leader reach the other process; a process without the lease cannot write them', async (t) => {
      if (skip()) return t.skip('no PostgreSQL');
      const { a, b, third, close } = await pair(engine);
      try {
        // Nobody renews in this test: a lease long enough to outlast it (an expired one fences off the leader too).
        const long = { heartbeatMs: 1_000, leaseMs: 60_000 };
        const A = lease(a.sql, 'replica-a', 'containers', long), B = lease(b.sql, 'replica-b', 'containers', long);
        A.lease.beat();
        B.lease.beat();
        const roleA = { leading: true, confirm: () => A.lease.confirm() };
        const roleB = { leading: false, confirm: () => B.lease.confirm() };
        const epA = new ContainerEndpoints(), epB = new ContainerEndpoints();
        new EndpointFeed(a.feed, epA, roleA, () => undefined);
        new EndpointFeed(b.feed, epB, roleB, () => undefined);
        const key = 'calc.default/default';
        epA.set(key, view('http://127.0.0.1:1111'));
        b.feed.catchUp();
        assert.deepEqual(epB.get(key)?.endpoints, [{ id: '1111', url: 'http://127.0.0.1:1111' }]);
        assert.equal(epB.acquire('calc', 'default').endpoint.url, 'http://127.0.0.1:1111', 'the follower routes to it');
        // A follower that has not applied the leader's newest commit yet catches up on the miss instead of a 503.
        epA.set('fresh.default/default', view('http://127.0.0.1:3333'));
        assert.equal(epB.get('fresh.default/default'), undefined, 'not followed yet');
        assert.equal(epB.acquire('fresh', 'default').endpoint.url, 'http://127.0.0.1:3333');
        // The rollout order reaches the follower as the leader made it: new replica added, then the old one gone.
        epA.set(key, { ...view('http://127.0.0.1:2222'), endpoints: [...view('http://127.0.0.1:1111').endpoints, ...view('http://127.0.0.1:2222').endpoints] });
        epA.set(key, view('http://127.0.0.1:2222'));
        b.feed.catchUp();
        assert.deepEqual(epB.get(key)?.endpoints.map((e) => e.url), ['http://127.0.0.1:2222']);

        // B believes it leads but the store names A: its writes are fenced off.
        roleB.leading = true;
        epB.set('rogue.default/default', view('http://127.0.0.1:6666'));
        roleB.leading = false;
        a.feed.catchUp();
        assert.equal(epA.get('rogue.default/default'), undefined);
        assert.equal(a.sql.get('SELECT 1 AS x FROM container_endpoints WHERE workload = ?', ['rogue.default/default']), undefined);

        // A process starting now learns the table from the store; a removal reaches everyone.
        const c = await third();
        const epC = new ContainerEndpoints();
        new EndpointFeed(c.feed, epC, { leading: false, confirm: () => false }, () => undefined);
        assert.deepEqual(epC.get(key)?.endpoints.map((e) => e.url), ['http://127.0.0.1:2222']);
        epA.delete(key);
        b.feed.catchUp();
        c.feed.catchUp();
        assert.equal(epB.get(key), undefined);
        assert.equal(epC.get(key), undefined);
      } finally {
        await close();
      }
    });
  });
}
