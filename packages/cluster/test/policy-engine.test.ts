import { test, describe, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseManifests, validateResource, type Condition, type Resource } from '@octelium-ts/shared';
import { openDatabase } from '../src/store/db.js';
import { ResourceStore } from '../src/store/resource-store.js';
import type { RequestFacts } from '../src/gateway/request-facts.js';
import { BUILTIN_POLICIES, PolicyEngine, checkExpressions, resourceToCel } from '../src/policy/index.js';

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** Validates like `apply` does (defaults, canonical names), then stores. */
function put(store: ResourceStore, doc: Record<string, unknown>): Resource {
  const v = validateResource(doc);
  if (!v.ok) assert.fail(`invalid test resource: ${JSON.stringify(v.issues)}`);
  assert.deepEqual(checkExpressions(v.resource), [], 'test resources must compile');
  return store.create(v.resource);
}

const service = (store: ResourceStore, name: string, spec: Record<string, unknown> = {}) =>
  put(store, { kind: 'Service', metadata: { name }, spec: { mode: 'HTTP', config: { upstream: { url: 'https://up.example.com' } }, ...spec } });
const user = (store: ResourceStore, name: string, spec: Record<string, unknown> = {}) => put(store, { kind: 'User', metadata: { name }, spec });
const policy = (store: ResourceStore, name: string, rules: unknown[]) => put(store, { kind: 'Policy', metadata: { name }, spec: { rules } });
const inline = (...rules: unknown[]) => ({ inlinePolicies: [{ spec: { rules } }] });
const allow = (match: string, extra: Record<string, unknown> = {}) => ({ effect: 'ALLOW', condition: { match }, ...extra });
const deny = (match: string, extra: Record<string, unknown> = {}) => ({ effect: 'DENY', condition: { match }, ...extra });

interface FactOpts {
  user?: Resource;
  session?: Resource;
  namespace?: Resource;
  body?: unknown;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  rawBody?: string;
}
function facts(svc: Resource, o: FactOpts = {}): RequestFacts {
  const path = o.path ?? '/mcp';
  const query = o.query ?? {};
  const qs = new URLSearchParams(query).toString();
  return {
    service: svc,
    user: o.user,
    session: o.session,
    namespace: o.namespace,
    request: {
      http: {
        method: o.method ?? 'POST',
        path,
        uri: qs ? `${path}?${qs}` : path,
        scheme: 'https',
        host: `${svc.metadata.name}.example.com`,
        headers: o.headers ?? { 'content-type': 'application/json' },
        query,
        ...(o.body === undefined ? {} : { bodyMap: o.body }),
        ...(o.rawBody === undefined ? {} : { body: o.rawBody }),
      },
    },
  };
}

/** A JSON-RPC tools/call body, as the gateway would parse it (JSON.parse, so numbers are JS numbers). */
const call = (name: string, args: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  JSON.parse(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args }, ...extra }));

let store: ResourceStore;
let engine: PolicyEngine;
beforeEach(() => {
  store = new ResourceStore(openDatabase(':memory:'));
  for (const p of BUILTIN_POLICIES) store.create(p);
  engine = new PolicyEngine(store);
});

/** Silences and records console.warn for one test (the engine logs evaluation errors and missing refs). */
function captureWarnings(t: { mock: { method: (o: object, m: string, impl: (...a: unknown[]) => void) => unknown } }): string[] {
  const lines: string[] = [];
  t.mock.method(console, 'warn', (...args: unknown[]) => void lines.push(args.map(String).join(' ')));
  return lines;
}

// ---------------------------------------------------------------------------------------------------------
// The seed fixture (04-l7-policy.yaml): one ALLOW rule, all of five CEL expressions over bodyMap.

describe('seed fixture 04-l7-policy.yaml', () => {
  const fixture = fileURLToPath(new URL('./fixtures/seed/04-l7-policy.yaml', import.meta.url));
  let svc: Resource;
  let alice: Resource;
  beforeEach(() => {
    const { docs, errors } = parseManifests(readFileSync(fixture, 'utf8'), fixture);
    assert.deepEqual(errors, []);
    assert.equal(docs.length, 1);
    assert.deepEqual(checkExpressions(docs[0].resource), []);
    svc = store.create(docs[0].resource);
    alice = user(store, 'alice');
  });

  const allowedBodies: Array<[string, unknown]> = [
    ['add with integer a=4', call('add', { a: 4, b: 2000 })],
    ['add with double a=4.5', call('add', { a: 4.5, b: 2000 })],
    ['subtract', call('subtract', { a: 999, b: 1001 })],
    ['negative a, double b', call('add', { a: -3, b: 1000.5 })],
    ['a = 999.999', call('add', { a: 999.999, b: 1e6 })],
  ];
  for (const [title, body] of allowedBodies) {
    test(`allows: ${title}`, () => {
      const d = engine.authorize(facts(svc, { user: alice, body }));
      assert.equal(d.allowed, true);
      assert.equal(d.reason.type, 'POLICY_MATCH');
      assert.deepEqual(d.reason.details?.policyMatch, { inlinePolicy: { name: 'inline[0]', attachedTo: { kind: 'Service', name: 'my-mcp' } } });
      assert.equal(d.reason.details?.effect, 'ALLOW');
    });
  }

  test('a rule decides every request it matches with one frozen decision object (nothing allocated per request)', () => {
    const first = engine.authorize(facts(svc, { user: alice, body: call('add', { a: 4, b: 2000 }) }));
    const second = engine.authorize(facts(svc, { user: alice, body: call('subtract', { a: 1, b: 5000 }) }));
    assert.equal(first.allowed, true);
    assert.equal(second, first);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.reason) && Object.isFrozen(first.reason.details));
    assert.throws(() => {
      (first.reason as { type: string }).type = 'TAMPERED';
    }, TypeError);
    const denied = engine.authorize(facts(svc, { user: alice, body: call('add', { a: 5000, b: 2000 }) }));
    assert.equal(denied.reason.type, 'NO_POLICY_MATCH');
  });

  // One body per sub-expression that makes exactly that sub-expression false.
  const deniedBodies: Array<[string, unknown]> = [
    ['jsonrpc is not "2.0"', call('add', { a: 4, b: 2000 }, { jsonrpc: '1.0' })],
    ['method is not tools/call', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { name: 'add', arguments: { a: 4, b: 2000 } } }],
    ['tool name not in the list', call('multiply', { a: 4, b: 2000 })],
    ['a = 5000', call('add', { a: 5000, b: 2000 })],
    ['a = 1000 (strict <)', call('add', { a: 1000, b: 2000 })],
    ['a = 1000.5 (double)', call('add', { a: 1000.5, b: 2000 })],
    ['b = 10', call('add', { a: 4, b: 10 })],
    ['b = 1000 (strict >)', call('add', { a: 4, b: 1000 })],
  ];
  for (const [title, body] of deniedBodies) {
    test(`denies: ${title}`, () => {
      const f = facts(svc, { user: alice, body });
      const d = engine.explain(f);
      assert.equal(d.allowed, false);
      assert.equal(d.reason.type, 'NO_POLICY_MATCH');
      assert.equal(d.rules.length, 1);
      assert.equal(d.rules[0].matched, false);
      assert.equal(d.rules[0].error, undefined, 'a false comparison is a plain non-match, not an error');
      assert.deepEqual(engine.authorize(f), { allowed: false, reason: d.reason });
    });
  }

  test('each seed expression on its own: matching and non-matching values', () => {
    const exprs = (svc.spec as { authorization: { inlinePolicies: Array<{ spec: { rules: Array<{ condition: { all: { of: Condition[] } } }> } }> } }).authorization.inlinePolicies[0].spec.rules[0].condition.all.of;
    assert.equal(exprs.length, 5);
    const good = call('add', { a: 4, b: 2000 });
    const cases: Array<[Condition, unknown]> = [
      [exprs[0], call('add', {}, { jsonrpc: '2.1' })],
      [exprs[1], { ...good, method: 'initialize' }],
      [exprs[2], call('Add', { a: 4, b: 2000 })],
      [exprs[3], call('add', { a: 1e9, b: 2000 })],
      [exprs[4], call('add', { a: 4, b: -1 })],
    ];
    for (const [cond, bad] of cases) {
      assert.equal(engine.evaluate(cond, facts(svc, { body: good })), true, `${cond.match} on the good body`);
      assert.equal(engine.evaluate(cond, facts(svc, { body: bad })), false, `${cond.match} on the bad body`);
    }
  });

  test('missing arguments / missing body are plain non-matches (no error, the missing key reported); wrong types are errors', (t) => {
    const warnings = captureWarnings(t);
    for (const body of [call('add', { b: 2000 }), { jsonrpc: '2.0', method: 'tools/call' }, undefined, [call('add', { a: 4, b: 2000 })]]) {
      const d = engine.explain(facts(svc, { user: alice, body }));
      assert.equal(d.allowed, false, JSON.stringify(body));
      assert.equal(d.reason.type, 'NO_POLICY_MATCH');
      assert.equal(d.rules[0].matched, false);
      assert.equal(d.rules[0].outcome, 'NOT_MATCHED');
      assert.equal(d.rules[0].error, undefined, `missing input is not an error: ${JSON.stringify(body)}`);
      assert.match(d.rules[0].missing?.[0] ?? '', /^No such key/, `missing key reported for ${JSON.stringify(body)}`);
    }
    const wrong = engine.explain(facts(svc, { user: alice, body: call('add', { a: 'four', b: 2000 }) }));
    assert.equal(wrong.allowed, false);
    assert.equal(wrong.rules[0].outcome, 'ERROR');
    assert.ok(wrong.rules[0].error, 'a type error is reported');
    assert.equal(warnings.length, 1, 'only the type error is logged, missing input is normal');
    assert.ok(warnings.every((w) => !w.includes('four')), 'logs never quote request data');
  });
});

// ---------------------------------------------------------------------------------------------------------
// CEL values and ctx

describe('CEL ctx', () => {
  let svc: Resource;
  beforeEach(() => {
    svc = service(store, 'api', { authorization: inline(allow('true')) });
  });
  const ev = (match: string, o: FactOpts = {}) => engine.evaluate({ match }, facts(svc, o));

  test('JSON integers are CEL ints, doubles stay doubles, and they compare with each other', () => {
    const body = JSON.parse('{"i": 4, "d": 4.5, "big": 12345678901, "neg": -7, "huge": 1e300}');
    assert.equal(ev('ctx.request.http.bodyMap.i + 1 == 5', { body }), true);
    assert.equal(ev('type(ctx.request.http.bodyMap.i) == int', { body }), true);
    assert.equal(ev('type(ctx.request.http.bodyMap.d) == double', { body }), true);
    assert.equal(ev('ctx.request.http.bodyMap.d + 0.5 == 5.0', { body }), true);
    assert.equal(ev('ctx.request.http.bodyMap.i < 4.5 && ctx.request.http.bodyMap.d > 4', { body }), true);
    assert.equal(ev('ctx.request.http.bodyMap.i == 4.0', { body }), true);
    assert.equal(ev('ctx.request.http.bodyMap.big * 2 == 24691357802', { body }), true);
    assert.equal(ev('ctx.request.http.bodyMap.neg in [-7, 3]', { body }), true);
    assert.equal(ev('ctx.request.http.bodyMap.d in [1, 4.5]', { body }), true, 'mixed list literals are allowed');
    assert.equal(ev('ctx.request.http.bodyMap.huge > 1000', { body }), true, 'integers beyond 2^53 stay doubles');
    assert.equal(ev('size(ctx.request.http.bodyMap) == 5', { body }), true);
  });

  test('missing fields make the whole expression false (even under a `!` inside it); has() works on present and absent fields', () => {
    const body = { params: { name: 'add', arguments: {} } };
    assert.equal(ev('ctx.request.http.bodyMap.params.arguments.a < 1000', { body }), false);
    assert.equal(ev('!(ctx.request.http.bodyMap.params.arguments.a < 1000)', { body }), false, 'missing input inside an expression is not turned into true by its own negation');
    assert.equal(ev('has(ctx.request.http.bodyMap.params.arguments.a)', { body }), false);
    assert.equal(ev('has(ctx.request.http.bodyMap.params.name)', { body }), true);
    assert.equal(ev('!has(ctx.request.http.bodyMap.params.arguments.a) || ctx.request.http.bodyMap.params.arguments.a < 1000', { body }), true);
    assert.equal(ev('has(ctx.request.http.bodyMap.method)'), false, 'no body: bodyMap is an empty map');
    assert.equal(ev('ctx.request.http.bodyMap.method == "x"'), false);
  });

  test('headers and query behave as maps in every CEL form', () => {
    const o: FactOpts = { headers: { 'x-a': '1', 'X-B': 'two' }, query: { page: '2', q: 'x' } };
    const h = 'ctx.request.http.headers';
    for (const expr of [
      `${h}["x-a"] == "1"`, `${h}["x-b"] == "two"`, `"x-a" in ${h}`, `!("x-c" in ${h})`, `has(${h}.x_c) == false`,
      `size(${h}) == 2`, `${h}.size() == 2`, `${h}.exists(k, k == "x-b")`, `${h}.all(k, ${h}[k] != "")`,
      `${h} == {"x-a": "1", "x-b": "two"}`, `{"x-b": "two", "x-a": "1"} == ${h}`, `${h} != {"x-a": "1"}`,
      `type(${h}) == map`, `${h}.map(k, k).size() == 2`, `${h}.filter(k, k.startsWith("x-")).size() == 2`,
      'ctx.request.http.query.page == "2" && size(ctx.request.http.query) == 2',
      'type(ctx.request.http.query) == map && ctx.request.http.query.exists_one(k, k == "q")',
    ]) assert.equal(ev(expr, o), true, expr);
    assert.equal(ev(`${h}["x-a"] == "2"`, o), false);
    assert.equal(ev('size(ctx.request.http.query) == 0'), true, 'no query: an empty map');
  });

  test('request fields: method, path, uri, scheme, host, lower-case headers, query, raw body', () => {
    const o: FactOpts = { method: 'GET', path: '/v1/items', query: { page: '2' }, headers: { 'X-Custom-Header': 'abc', accept: 'text/plain' }, rawBody: 'hello' };
    assert.equal(ev('ctx.request.http.method == "GET" && ctx.request.http.path.startsWith("/v1/")', o), true);
    assert.equal(ev('ctx.request.http.uri == "/v1/items?page=2" && ctx.request.http.query.page == "2"', o), true);
    assert.equal(ev('ctx.request.http.scheme == "https" && ctx.request.http.host == "api.example.com"', o), true);
    assert.equal(ev('ctx.request.http.headers["x-custom-header"] == "abc"', o), true);
    assert.equal(ev('"X-Custom-Header" in ctx.request.http.headers', o), false);
    assert.equal(ev('ctx.request.http.body.contains("ell")', o), true);
    assert.equal(ev('has(ctx.request.http.body)'), false);
    assert.equal(ev('has(ctx.request.http.headers.authorization)', o), false);
  });

  test('user, session, service and namespace are visible; absent ones are empty maps', () => {
    const bob = user(store, 'bob', { type: 'WORKLOAD', email: 'bob@example.com', groups: ['dev', 'ops'] });
    const ns = put(store, { kind: 'Namespace', metadata: { name: 'default', labels: { env: 'prod' } }, spec: {} });
    const o: FactOpts = { user: bob };
    assert.equal(ev('ctx.user.metadata.name == "bob" && ctx.user.spec.type == "WORKLOAD"', o), true);
    assert.equal(ev('ctx.user.spec.groups.exists(g, g == "ops")', o), true);
    assert.equal(ev('"dev" in ctx.user.spec.groups && ctx.user.spec.email.endsWith("@example.com")', o), true);
    assert.equal(ev('ctx.service.metadata.name == "api" && ctx.service.spec.mode == "HTTP"', o), true);
    assert.equal(ev('ctx.namespace.metadata.labels.env == "prod"', o), true, 'namespace resolved from the store by the Service name');
    assert.equal(ev('ctx.namespace.metadata.name == "default"', { namespace: ns }), true);
    assert.equal(ev('has(ctx.user.metadata)'), false, 'anonymous: ctx.user is an empty map');
    assert.equal(ev('size(ctx.session) == 0'), true);
    assert.equal(ev('ctx.user.metadata.name == "bob"'), false);
  });

  test('hostile JSON keys are ordinary keys; absurdly deep bodies fail closed', () => {
    const body = JSON.parse('{"__proto__": {"admin": true}, "constructor": 1}');
    assert.equal(ev('ctx.request.http.bodyMap["__proto__"].admin', { body }), true);
    assert.equal(ev('has(ctx.request.http.bodyMap.toString)', { body }), false);
    // cel-js recognises maps by `.constructor`; a client-sent `constructor` key must not break that.
    assert.equal(ev('ctx.request.http.bodyMap.constructor == 1 && size(ctx.request.http.bodyMap) == 2', { body }), true);
    assert.equal(ev('ctx.request.http.headers.constructor == "x"', { body, headers: { constructor: 'x' } }), true);
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const f = facts(svc, { body: deep });
    assert.equal(engine.evaluate({ matchAny: true }, f), false, 'no ctx could be built, so nothing matches');
    assert.equal(engine.authorize(f).allowed, false);
  });

  test('a non-bool result is an error, never a match', (t) => {
    captureWarnings(t);
    // `ctx.*` is dynamically typed, so this compiles; at runtime it yields a string.
    assert.equal(ev('ctx.request.http.method'), false);
    const s = service(store, 'strs', { authorization: inline(deny('ctx.request.http.method'), allow('true')) });
    const d = engine.explain(facts(s));
    assert.equal(d.allowed, false);
    assert.match(d.rules[0].error ?? '', /not bool/);
  });

  test('many interleaved requests each see their own ctx (per-request memo is keyed by the facts object)', () => {
    const all = Array.from({ length: 12 }, (_, i) => facts(svc, { body: { n: i } }));
    for (const f of all) assert.equal(engine.evaluate({ match: 'ctx.request.http.bodyMap.n >= 0' }, f), true);
    for (const [i, f] of [...all.entries()].reverse()) assert.equal(engine.evaluate({ match: `ctx.request.http.bodyMap.n == ${i}` }, f), true, `request ${i}`);
  });

  test('converted resources are cached per resource object (ctx built once, not per rule)', () => {
    const bob = user(store, 'bob2', { groups: ['dev'] });
    assert.equal(resourceToCel(bob), resourceToCel(bob));
    const updated = store.update({ ...bob, spec: { ...(bob.spec as object), groups: ['ops'] } }).resource;
    assert.notEqual(resourceToCel(updated), resourceToCel(bob), 'an updated resource is a new object and is converted again');
    assert.equal(ev('"ops" in ctx.user.spec.groups', { user: updated }), true);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Decision semantics

describe('decision semantics', () => {
  test('no rules at all → denied with NO_POLICY_MATCH', () => {
    const svc = service(store, 'empty');
    assert.deepEqual(engine.authorize(facts(svc)), { allowed: false, reason: { type: 'NO_POLICY_MATCH' } });
  });

  test('DENY beats ALLOW regardless of order and priority', () => {
    const svc = service(store, 'svc', {
      authorization: inline(
        allow('true', { name: 'allow-everything', priority: 100 }),
        deny('ctx.request.http.method == "DELETE"', { name: 'no-delete' }),
      ),
    });
    const del = engine.authorize(facts(svc, { method: 'DELETE' }));
    assert.equal(del.allowed, false);
    assert.equal(del.reason.type, 'POLICY_MATCH');
    assert.equal(del.reason.details?.rule, 'no-delete');
    assert.equal(del.reason.details?.effect, 'DENY');
    const get = engine.authorize(facts(svc, { method: 'GET' }));
    assert.equal(get.allowed, true);
    assert.equal(get.reason.details?.rule, 'allow-everything');
  });

  test('priorities: higher priority first within an effect (deciding rule and explain order)', () => {
    const svc = service(store, 'prio', {
      authorization: inline(
        deny('true', { name: 'deny-low', priority: 1 }),
        deny('true', { name: 'deny-high', priority: 5 }),
        deny('true', { name: 'deny-default' }),
        allow('true', { name: 'allow-low', priority: -3 }),
        allow('true', { name: 'allow-high', priority: 9 }),
      ),
    });
    const d = engine.explain(facts(svc));
    assert.equal(d.reason.details?.rule, 'deny-high');
    assert.deepEqual(d.rules.map((r) => r.rule), ['deny-high', 'deny-low', 'deny-default', 'allow-high', 'allow-low']);
    assert.equal(engine.authorize(facts(svc)).reason.details?.rule, 'deny-high');

    const allowOnly = service(store, 'prio2', { authorization: inline(allow('true', { name: 'a1', priority: 1 }), allow('true', { name: 'a2', priority: 2 }), allow('true', { name: 'a3' })) });
    assert.equal(engine.authorize(facts(allowOnly)).reason.details?.rule, 'a2');
  });

  test('equal priorities keep attachment order: Session, User, Groups, Service, Namespace', () => {
    const ns = put(store, { kind: 'Namespace', metadata: { name: 'ordns' }, spec: { authorization: inline(allow('true', { name: 'from-ns' })) } });
    put(store, { kind: 'Group', metadata: { name: 'g1' }, spec: { authorization: inline(allow('true', { name: 'from-group' })) } });
    const u = user(store, 'ord', { groups: ['g1'], authorization: inline(allow('true', { name: 'from-user' })) });
    const session = put(store, { kind: 'Session', metadata: { name: 'sess-1' }, spec: { authorization: inline(allow('true', { name: 'from-session' })) } });
    const svc = service(store, 'ord.ordns', { authorization: inline(allow('true', { name: 'from-service' })) });
    const d = engine.explain(facts(svc, { user: u, session }));
    assert.deepEqual(d.rules.map((r) => r.rule), ['from-session', 'from-user', 'from-group', 'from-service', 'from-ns']);
    assert.deepEqual(d.rules.map((r) => r.attachedTo), [
      { kind: 'Session', name: 'sess-1' },
      { kind: 'User', name: 'ord' },
      { kind: 'Group', name: 'g1' },
      { kind: 'Service', name: 'ord.ordns' },
      { kind: 'Namespace', name: ns.metadata.name },
    ]);
    assert.equal(d.reason.details?.rule, 'from-session');
  });

  test('explain reports every rule; authorize stops at the decision but agrees with it', () => {
    const svc = service(store, 'exp', {
      authorization: inline(allow('ctx.request.http.method == "GET"', { name: 'get' }), allow('ctx.request.http.method == "POST"', { name: 'post' }), deny('ctx.request.http.path == "/admin"', { name: 'admin' })),
    });
    const f = facts(svc, { method: 'POST' });
    const d = engine.explain(f);
    assert.deepEqual(
      d.rules.map((r) => [r.rule, r.effect, r.matched, r.source]),
      [
        ['admin', 'DENY', false, 'service/exp inline[0]'],
        ['get', 'ALLOW', false, 'service/exp inline[0]'],
        ['post', 'ALLOW', true, 'service/exp inline[0]'],
      ],
    );
    const { rules: _rules, ...decision } = d;
    assert.deepEqual(engine.authorize(f), decision);
    assert.equal(decision.reason.details?.rule, 'post');
  });

  test('unnamed rules are labelled by index; named inline policies by name', () => {
    const svc = service(store, 'labels', { authorization: { inlinePolicies: [{ name: 'mine', spec: { rules: [deny('false'), allow('true')] } }] } });
    const d = engine.explain(facts(svc));
    assert.deepEqual(d.rules.map((r) => `${r.source} ${r.rule}`), ['service/labels inline/mine rules[0]', 'service/labels inline/mine rules[1]']);
    assert.deepEqual(d.reason.details?.policyMatch, { inlinePolicy: { name: 'mine', attachedTo: { kind: 'Service', name: 'labels' } } });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Conditions: all / any / none / not / matchAny, nested

describe('conditions', () => {
  let svc: Resource;
  beforeEach(() => {
    svc = service(store, 'cond');
  });
  const T = { match: 'true' };
  const F = { match: 'false' };
  const E = { match: 'ctx.request.http.method + 1 == 2' }; // evaluation error (no such overload: string + int)
  const M = { match: 'ctx.request.http.bodyMap.missing == 1' }; // missing input: false, not an error
  const get: FactOpts = { method: 'GET', path: '/a/b' };
  const ev = (c: Condition) => engine.evaluate(c, facts(svc, get));

  test('all / any / none / not / matchAny truth tables', () => {
    assert.equal(ev({ all: { of: [T, T] } }), true);
    assert.equal(ev({ all: { of: [T, F] } }), false);
    assert.equal(ev({ any: { of: [F, T] } }), true);
    assert.equal(ev({ any: { of: [F, F] } }), false);
    assert.equal(ev({ none: { of: [F, F] } }), true);
    assert.equal(ev({ none: { of: [F, T] } }), false);
    assert.equal(ev({ not: 'false' }), true);
    assert.equal(ev({ not: 'true' }), false);
    assert.equal(ev({ not: F }), true);
    assert.equal(ev({ not: { any: { of: [F, T] } } }), false);
    assert.equal(ev({ matchAny: true }), true);
    assert.equal(ev({ matchAny: false }), false);
  });

  test('deep nesting over real request fields', () => {
    const c: Condition = {
      all: {
        of: [
          { match: 'ctx.request.http.method == "GET"' },
          { any: { of: [{ match: 'ctx.request.http.path.startsWith("/x")' }, { not: { none: { of: [{ match: 'ctx.request.http.path.endsWith("/b")' }] } } }] } },
          { none: { of: [{ match: 'ctx.request.http.path.contains("admin")' }, { not: 'ctx.request.http.scheme == "https"' }] } },
        ],
      },
    };
    assert.equal(ev(c), true);
    assert.equal(engine.evaluate(c, facts(svc, { ...get, path: '/a/c' })), false);
    assert.equal(engine.evaluate(c, facts(svc, { ...get, path: '/admin/b' })), false);
    assert.equal(engine.evaluate(c, facts(svc, { ...get, method: 'PUT' })), false);
  });

  test('errors inside all/any only decide when nothing else does (like CEL && and ||)', () => {
    assert.equal(ev({ all: { of: [E, F] } }), false);
    assert.equal(ev({ any: { of: [E, T] } }), true);
    // Undecided: the error propagates, and evaluate() reports false …
    assert.equal(ev({ all: { of: [E, T] } }), false);
    assert.equal(ev({ any: { of: [E, F] } }), false);
    // … even under negation: not(error) is an error, not true.
    assert.equal(ev({ not: E }), false);
    assert.equal(ev({ none: { of: [E, F] } }), false);
  });

  test('missing input: the match expression is false and combinators apply as usual (Octelium)', () => {
    assert.equal(ev(M), false);
    assert.equal(ev({ not: M }), true, 'not(false) — the documented consequence of "missing is false"');
    assert.equal(ev({ not: 'ctx.request.http.bodyMap.missing == 1' }), true);
    assert.equal(ev({ none: { of: [M, F] } }), true);
    assert.equal(ev({ all: { of: [M, T] } }), false);
    assert.equal(ev({ any: { of: [M, T] } }), true);
    assert.equal(ev({ any: { of: [M, F] } }), false);
    const r = engine.condition({ all: { of: [M, T] } }, facts(svc, get));
    assert.deepEqual(r, { matched: false }, 'no error is reported for missing input');
  });

  test('short-circuit: later branches are not evaluated once the result is known', () => {
    // If `any` evaluated its second branch, the error would be reported by explain.
    const s = service(store, 'sc', { authorization: inline({ effect: 'DENY', condition: { any: { of: [T, E] } } }) });
    const d = engine.explain(facts(s));
    assert.equal(d.rules[0].matched, true);
    assert.equal(d.rules[0].error, undefined);
    assert.equal(d.reason.details?.evaluationError, undefined);
  });

  test('malformed (unvalidated) conditions never match', () => {
    assert.equal(engine.evaluate({} as Condition, facts(svc)), false);
    assert.equal(engine.evaluate({ match: 'true', matchAny: true } as Condition, facts(svc)), false);
    assert.equal(engine.evaluate({ match: 'true &&' }, facts(svc)), false, 'compile errors are evaluation errors');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Errors fail closed

describe('evaluation errors fail closed', () => {
  test('a DENY rule that errors matches (deny); an ALLOW rule that errors does not', (t) => {
    const warnings = captureWarnings(t);
    const svc = service(store, 'fc', {
      authorization: inline(
        deny('ctx.request.http.bodyMap.params.arguments.path.startsWith("/etc")', { name: 'no-etc' }),
        allow('true', { name: 'allow-rest' }),
      ),
    });
    const ok = engine.authorize(facts(svc, { body: { params: { arguments: { path: '/home/x' } } } }));
    assert.equal(ok.allowed, true);
    // path is a number: startsWith has no overload for it — an error, not missing input.
    const d = engine.explain(facts(svc, { body: { params: { arguments: { path: 42 } } } }));
    assert.equal(d.allowed, false);
    assert.equal(d.reason.type, 'POLICY_MATCH');
    assert.equal(d.reason.details?.rule, 'no-etc');
    assert.equal(d.reason.details?.evaluationError, 'no_matching_overload');
    assert.equal(d.rules[0].matched, true);
    assert.equal(d.rules[0].outcome, 'ERROR');
    assert.match(d.rules[0].error ?? '', /overload/);
    assert.equal(warnings.filter((w) => w.includes('no-etc')).length, 1);
    engine.authorize(facts(svc, { body: { params: { arguments: { path: 43 } } } }));
    assert.equal(warnings.filter((w) => w.includes('no-etc')).length, 1, 'logged once, not per request');

    const allowOnly = service(store, 'fc2', { authorization: inline(allow('ctx.request.http.bodyMap.x > 1', { name: 'x-big' })) });
    const d2 = engine.explain(facts(allowOnly, { body: { x: 'big' } }));
    assert.deepEqual(d2.reason, { type: 'NO_POLICY_MATCH' });
    assert.equal(d2.rules[0].matched, false);
    assert.ok(d2.rules[0].error);
  });

  test('a runtime type error (no such overload) is an error too', (t) => {
    captureWarnings(t);
    const svc = service(store, 'ovl', { authorization: inline(deny('ctx.request.http.bodyMap.n + "x" == "1x"'), allow('true')) });
    const d = engine.explain(facts(svc, { body: { n: 1 } }));
    assert.equal(d.allowed, false);
    assert.match(d.rules[0].error ?? '', /overload/);
  });

  test('a stored rule that does not compile (bypassed the apply check) fails closed', (t) => {
    captureWarnings(t);
    const bad = validateResource({ kind: 'Service', metadata: { name: 'badsvc' }, spec: { authorization: inline(deny('ctx.request.http.method =='), allow('true')) } });
    assert.ok(bad.ok);
    const svc = store.create(bad.resource);
    const d = engine.explain(facts(svc));
    assert.equal(d.allowed, false);
    assert.equal(d.reason.details?.evaluationError, 'compile_error');
  });
});

describe('missing input is no match (Octelium), for DENY and ALLOW rules', () => {
  test('a User DENY on params.name does not deny initialize or tools/list (no params.name), only the tool it names', (t) => {
    const warnings = captureWarnings(t);
    const bob = user(store, 'bob', { authorization: inline(deny('ctx.request.http.bodyMap.params.name == "subtract"', { name: 'no-subtract' })) });
    const svc = service(store, 'calc', { authorization: inline(allow('true', { name: 'everyone' })) });
    for (const body of [{ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {} } }, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', method: 'notifications/initialized' }]) {
      const d = engine.explain(facts(svc, { user: bob, body }));
      assert.equal(d.allowed, true, body.method);
      assert.equal(d.reason.details?.rule, 'everyone');
      const denyRule = d.rules.find((r) => r.rule === 'no-subtract')!;
      assert.equal(denyRule.outcome, 'NOT_MATCHED');
      assert.equal(denyRule.error, undefined);
      assert.match(denyRule.missing?.join() ?? '', /^No such key: (name|params)$/);
    }
    assert.equal(engine.authorize(facts(svc, { user: bob, body: call('subtract', { a: 1, b: 2 }) })).allowed, false);
    assert.equal(engine.authorize(facts(svc, { user: bob, body: call('add', { a: 1, b: 2 }) })).allowed, true);
    assert.deepEqual(warnings, [], 'missing input is not logged as an evaluation error');
  });

  test('an ALLOW rule reading a missing key simply does not match (NO_POLICY_MATCH, no error)', () => {
    const svc = service(store, 'only-add', { authorization: inline(allow('ctx.request.http.bodyMap.params.name == "add"', { name: 'add-only' })) });
    const d = engine.explain(facts(svc, { body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } }));
    assert.deepEqual(d.reason, { type: 'NO_POLICY_MATCH' });
    assert.equal(d.rules[0].outcome, 'NOT_MATCHED');
    assert.equal(d.rules[0].error, undefined);
  });

  test('null selects and indexes out of range are missing input too; a DENY under `not` of missing input matches', () => {
    const svc = service(store, 'shapes', {
      authorization: inline(
        deny('ctx.request.http.bodyMap.params.meta.owner == "mallory"', { name: 'null-select' }),
        deny('ctx.request.http.bodyMap.params.items[2] == "rm"', { name: 'index' }),
        allow('true'),
      ),
    });
    const d = engine.explain(facts(svc, { body: { params: { meta: null, items: ['ls'] } } }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.rules.slice(0, 2).map((r) => [r.rule, r.outcome, r.error]), [['null-select', 'NOT_MATCHED', undefined], ['index', 'NOT_MATCHED', undefined]]);
    const strict = service(store, 'strict', { authorization: inline({ effect: 'DENY', name: 'must-name', condition: { not: { match: 'ctx.request.http.bodyMap.params.name != ""' } } }, allow('true')) });
    assert.equal(engine.authorize(facts(strict, { body: { method: 'tools/list' } })).allowed, false, 'not(missing → false) is true: the DENY matches');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Attachment levels and named policies

describe('attachment', () => {
  test('Service-level inline policy', () => {
    const svc = service(store, 's1', { authorization: inline(allow('ctx.user.metadata.name == "ann"')) });
    assert.equal(engine.authorize(facts(svc, { user: user(store, 'ann') })).allowed, true);
    assert.equal(engine.authorize(facts(svc, { user: user(store, 'ben') })).allowed, false);
  });

  test('Namespace-level policy applies to the Namespace\'s Services only', () => {
    put(store, { kind: 'Namespace', metadata: { name: 'prod' }, spec: { authorization: inline(allow('ctx.request.http.method == "GET"', { name: 'ns-get' })) } });
    const inProd = service(store, 'api.prod');
    const inDefault = service(store, 'api');
    const d = engine.authorize(facts(inProd, { method: 'GET' }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.reason.details?.policyMatch, { inlinePolicy: { name: 'inline[0]', attachedTo: { kind: 'Namespace', name: 'prod' } } });
    assert.equal(engine.authorize(facts(inProd, { method: 'POST' })).allowed, false);
    assert.equal(engine.authorize(facts(inDefault, { method: 'GET' })).allowed, false);
  });

  test('User-level DENY overrides a Service ALLOW', () => {
    const svc = service(store, 's2', { authorization: { policies: ['allow-all'] } });
    const mallory = user(store, 'mallory', { authorization: inline(deny('ctx.service.metadata.name == "s2"', { name: 'no-s2' })) });
    const ok = user(store, 'olive');
    assert.equal(engine.authorize(facts(svc, { user: ok })).allowed, true);
    const d = engine.authorize(facts(svc, { user: mallory }));
    assert.equal(d.allowed, false);
    assert.deepEqual(d.reason.details, {
      policyMatch: { inlinePolicy: { name: 'inline[0]', attachedTo: { kind: 'User', name: 'mallory' } } },
      rule: 'no-s2',
      effect: 'DENY',
      source: 'user/mallory inline[0]',
    });
  });

  test('Group-level ALLOW (via the User\'s spec.groups); missing Groups are skipped', (t) => {
    const warnings = captureWarnings(t);
    put(store, { kind: 'Group', metadata: { name: 'devs' }, spec: { authorization: inline(allow('ctx.service.metadata.name == "s3"')) } });
    const svc = service(store, 's3');
    const dev = user(store, 'dev1', { groups: ['ghosts', 'devs'] });
    const outsider = user(store, 'out1', { groups: ['ghosts'] });
    const d = engine.authorize(facts(svc, { user: dev }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.reason.details?.policyMatch, { inlinePolicy: { name: 'inline[0]', attachedTo: { kind: 'Group', name: 'devs' } } });
    assert.equal(engine.authorize(facts(svc, { user: outsider })).allowed, false);
    assert.ok(warnings.some((w) => w.includes('"ghosts"')));
  });

  test('Group-level named policy', () => {
    policy(store, 'read-only', [allow('ctx.request.http.method in ["GET", "HEAD"]', { name: 'reads' })]);
    put(store, { kind: 'Group', metadata: { name: 'readers' }, spec: { authorization: { policies: ['read-only'] } } });
    const svc = service(store, 's4');
    const reader = user(store, 'r1', { groups: ['readers'] });
    const d = engine.authorize(facts(svc, { user: reader, method: 'HEAD' }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.reason.details?.policyMatch, { policy: { name: 'read-only', attachedTo: { kind: 'Group', name: 'readers' } } });
    assert.equal(engine.authorize(facts(svc, { user: reader, method: 'PUT' })).allowed, false);
  });

  test('Session-level policies (e.g. from a Credential\'s --policy)', () => {
    const svc = service(store, 's5', { authorization: inline(allow('true')) });
    const u = user(store, 'sess-user');
    const limited = put(store, { kind: 'Session', metadata: { name: 'sess-limited' }, spec: { authorization: { policies: ['deny-all'] } } });
    const normal = put(store, { kind: 'Session', metadata: { name: 'sess-normal' }, spec: {} });
    assert.equal(engine.authorize(facts(svc, { user: u, session: normal })).allowed, true);
    const d = engine.authorize(facts(svc, { user: u, session: limited }));
    assert.equal(d.allowed, false);
    assert.deepEqual(d.reason.details?.policyMatch, { policy: { name: 'deny-all', attachedTo: { kind: 'Session', name: 'sess-limited' } } });
  });

  test('named policies at User, Service and Namespace level, evaluated once when attached twice', () => {
    policy(store, 'tools-only', [allow('ctx.request.http.bodyMap.method == "tools/call"', { name: 'tools' })]);
    policy(store, 'no-exec', [deny('ctx.request.http.bodyMap.params.name == "exec"', { name: 'exec' })]);
    put(store, { kind: 'Namespace', metadata: { name: 'lab' }, spec: { authorization: { policies: ['no-exec'] } } });
    const svc = service(store, 'mcp.lab', { authorization: { policies: ['tools-only', 'no-exec'] } });
    const u = user(store, 'tess', { authorization: { policies: ['tools-only'] } });
    const d = engine.explain(facts(svc, { user: u, body: call('read', {}) }));
    assert.equal(d.allowed, true);
    assert.deepEqual(d.rules.map((r) => [r.source, r.attachedTo.kind]), [
      ['policy/no-exec', 'Service'],
      ['policy/tools-only', 'User'],
    ]);
    const denied = engine.authorize(facts(svc, { user: u, body: call('exec', {}) }));
    assert.equal(denied.allowed, false);
    assert.deepEqual(denied.reason.details?.policyMatch, { policy: { name: 'no-exec', attachedTo: { kind: 'Service', name: 'mcp.lab' } } });
  });

  test('a missing named policy contributes no rules and is logged once', (t) => {
    const warnings = captureWarnings(t);
    const svc = service(store, 's6', { authorization: { policies: ['not-there-yet'] } });
    // Schema-valid references are not checked by validateResource; the store accepts them (apply checks refs separately).
    assert.deepEqual(engine.authorize(facts(svc)), { allowed: false, reason: { type: 'NO_POLICY_MATCH' } });
    engine.authorize(facts(svc));
    assert.equal(warnings.filter((w) => w.includes('not-there-yet')).length, 1);
    // Once it exists, it applies (no stale cache).
    policy(store, 'not-there-yet', [allow('true')]);
    assert.equal(engine.authorize(facts(svc)).allowed, true);
  });

  test('an updated Policy takes effect on the next request', () => {
    const p = policy(store, 'flip', [allow('true', { name: 'v1' })]);
    const svc = service(store, 's7', { authorization: { policies: ['flip'] } });
    assert.equal(engine.authorize(facts(svc)).allowed, true);
    store.update({ ...p, spec: { rules: [{ name: 'v2', effect: 'DENY', condition: { match: 'true' } }] } });
    const d = engine.authorize(facts(svc));
    assert.equal(d.allowed, false);
    assert.equal(d.reason.details?.rule, 'v2');
  });

  test('Groups and Policies created or deleted after a first decision are picked up (no stale rule cache)', () => {
    const svc = service(store, 's8');
    const u = user(store, 'late', { groups: ['late-group'] });
    const f = () => facts(svc, { user: u });
    assert.equal(engine.authorize(f()).allowed, false);
    const g = put(store, { kind: 'Group', metadata: { name: 'late-group' }, spec: { authorization: { policies: ['late-policy'] } } });
    assert.equal(engine.authorize(f()).allowed, false, 'the Group exists but its Policy does not yet');
    policy(store, 'late-policy', [allow('true', { name: 'late' })]);
    assert.equal(engine.authorize(f()).reason.details?.rule, 'late');
    store.delete('Group', g.metadata.name);
    assert.equal(engine.authorize(f()).allowed, false);
  });

  test('built-in allow-all / deny-all work even before bootstrap created them', () => {
    const bare = new PolicyEngine(new ResourceStore(openDatabase(':memory:')));
    const v = validateResource({ kind: 'Service', metadata: { name: 'b' }, spec: { authorization: { policies: ['allow-all'] } } });
    assert.ok(v.ok);
    assert.equal(bare.authorize(facts(v.resource)).allowed, true);
    const v2 = validateResource({ kind: 'Service', metadata: { name: 'b2' }, spec: { authorization: { policies: ['allow-all', 'deny-all'] } } });
    assert.ok(v2.ok);
    assert.equal(bare.authorize(facts(v2.resource)).allowed, false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Dynamic config

describe('selectDynamicConfig', () => {
  let svc: Resource;
  beforeEach(() => {
    svc = service(store, 'dyn', {
      dynamicConfig: {
        configs: [
          { name: 'v2', upstream: { url: 'https://v2.example.com' } },
          { name: 'admins', upstream: { url: 'https://admins.example.com' } },
        ],
        rules: [
          { condition: { match: 'ctx.request.http.bodyMap.params.name == "add-v2"' }, configName: 'v2' },
          { condition: { match: 'ctx.request.http.headers["x-version"] == "v2"' }, configName: 'v2' },
          { condition: { match: 'ctx.user.spec.groups.exists(g, g == "admins")' }, configName: 'admins' },
          { condition: { match: 'ctx.request.http.headers["x-ghost"] == "1"' }, configName: 'ghost' },
        ],
      },
    });
  });

  test('the first matching rule picks the config', () => {
    const admin = user(store, 'root', { groups: ['admins'] });
    assert.equal(engine.selectDynamicConfig(svc, facts(svc, { body: call('add-v2', { a: 1 }) })), 'v2');
    assert.equal(engine.selectDynamicConfig(svc, facts(svc, { headers: { 'x-version': 'v2' } })), 'v2');
    assert.equal(engine.selectDynamicConfig(svc, facts(svc, { user: admin, body: call('add', {}) })), 'admins');
    assert.equal(engine.selectDynamicConfig(svc, facts(svc, { user: admin, body: call('add-v2', {}) })), 'v2', 'earlier rule wins');
  });

  test('no match (and evaluation errors) → undefined; rules naming unknown configs are skipped', (t) => {
    const warnings = captureWarnings(t);
    // bodyMap missing and no groups: every rule errors or is false.
    assert.equal(engine.selectDynamicConfig(svc, facts(svc)), undefined);
    assert.equal(engine.selectDynamicConfig(svc, facts(svc, { headers: { 'x-ghost': '1' } })), undefined);
    assert.ok(warnings.some((w) => w.includes('"ghost"')));
    const plain = service(store, 'plain');
    assert.equal(engine.selectDynamicConfig(plain, facts(plain)), undefined);
  });
});
