import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { OcteliumError } from '@octelium-ts/shared';
import { SEED_DIR, runBin, startTestCluster, tempDir, type TestCluster } from '@octelium-ts/cluster/testing';

let tc: TestCluster;
let env: Record<string, string>;
const ctl = (args: string[], input?: string, extraEnv: Record<string, string> = {}) => runBin('octeliumctl', args, { env: { ...env, ...extraEnv }, input });

before(async () => {
  tc = await startTestCluster();
  env = { OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_ACCESS_TOKEN: tc.adminToken, HOME: tempDir('octelium-home-') };
});
after(() => tc.close());

describe('octeliumctl apply', () => {
  test('every seed fixture applies as written', async () => {
    const files = readdirSync(SEED_DIR).filter((f) => f.endsWith('.yaml')).sort();
    assert.equal(files.length, 5);
    for (const f of files) {
      const r = await ctl(['apply', join(SEED_DIR, f)]);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stdout, /^service\/my-mcp (created|configured)$/m, f);
    }
    // 01 refers to a User that does not exist yet: accepted, and the user is told it is pending.
    const r = await ctl(['apply', join(SEED_DIR, '01-upstream-user.yaml')]);
    assert.match(r.stdout, /service\/my-mcp configured/);
    assert.match(r.stderr, /user "mcp-01", which does not exist yet/);
    const svc = await tc.api.get('Service', 'my-mcp');
    assert.equal((svc.spec as { config: { upstream: { user: string } } }).config.upstream.user, 'mcp-01');
    assert.deepEqual(svc.status?.pendingRefs, ['user/mcp-01']);
    assert.match((await ctl(['get', 'svc', 'my-mcp'])).stdout, /^my-mcp\s+HTTP\s+true\s+.*Pending \(user\/mcp-01\)/m);
  });

  test('a directory (recursive) and stdin, multi-document', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'nested'));
    writeFileSync(join(dir, 'a.yaml'), 'kind: Group\nmetadata: {name: dev}\nspec: {}\n---\nkind: User\nmetadata: {name: dana}\nspec: {type: HUMAN, email: dana@example.com, groups: [dev]}\n');
    writeFileSync(join(dir, 'nested', 'b.yml'), 'kind: Policy\nmetadata: {name: p1}\nspec:\n  rules:\n    - {effect: ALLOW, condition: {match: "true"}}\n');
    writeFileSync(join(dir, 'ignored.txt'), 'not yaml');
    const r = await ctl(['apply', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), ['group/dev created', 'policy/p1 created', 'user/dana created']);
    const s = await ctl(['apply', '-'], 'kind: Namespace\nmetadata: {name: prod}\n---\nkind: Service\nmetadata: {name: api.prod}\nspec: {mode: HTTP, config: {upstream: {url: "http://127.0.0.1:9"}}}\n');
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(s.stdout.trim().split('\n'), ['namespace/prod created', 'service/api.prod created']);
    const again = await ctl(['apply', dir]);
    assert.deepEqual(again.stdout.trim().split('\n').sort(), ['group/dev unchanged', 'policy/p1 unchanged', 'user/dana unchanged']);
  });

  test('get -o yaml / -o json output re-applies as unchanged (single and list)', async () => {
    for (const fmt of ['yaml', 'json']) {
      const one = await ctl(['get', 'svc', 'my-mcp', '-o', fmt]);
      assert.equal(one.code, 0, one.stderr);
      const parsed = parse(one.stdout);
      assert.equal(parsed.metadata.name, 'my-mcp');
      assert.ok(parsed.metadata.resourceVersion && parsed.metadata.uid && parsed.metadata.createdAt);
      const re = await ctl(['apply', '-'], one.stdout);
      assert.equal(re.stdout.trim(), 'service/my-mcp unchanged', re.stderr);
      const list = await ctl(['get', 'users', '-o', fmt]);
      const reList = await ctl(['apply', '-'], list.stdout);
      assert.equal(reList.code, 0, reList.stderr);
      assert.match(reList.stdout, /user\/dana unchanged/);
    }
    const table = await ctl(['get', 'user']);
    assert.match(table.stdout, /^NAME\s+TYPE\s+EMAIL\s+GROUPS\s+AGE/m);
    assert.match(table.stdout, /^dana\s+HUMAN\s+dana@example\.com\s+dev/m);
  });

  test('-o wide adds the wide columns; a Service whose upstream refuses connections is only "Configured"', async () => {
    const applied = await ctl(['apply', '-'], 'kind: Service\nmetadata: {name: refused}\nspec:\n  config: {upstream: {url: "http://127.0.0.1:9"}}\n  authorization:\n    inlinePolicies: [{spec: {rules: [{effect: ALLOW, condition: {match: "true"}}]}}]\n');
    assert.equal(applied.code, 0, applied.stderr);
    const plain = await ctl(['get', 'svc', 'refused']);
    assert.match(plain.stdout, /^NAME\s+MODE\s+PUBLIC\s+UPSTREAM\s+STATE\s+AGE$/m);
    assert.match(plain.stdout, /^refused\s+HTTP\s+false\s+http:\/\/127\.0\.0\.1:9\s+Configured\s+\d+s$/m, 'configuration only: nothing claims it is reachable');
    const wide = await ctl(['get', 'svc', 'refused', '-o', 'wide']);
    assert.match(wide.stdout, /^NAME\s+MODE\s+PUBLIC\s+UPSTREAM\s+STATE\s+ANONYMOUS\s+POLICIES\s+PLUGINS\s+URL\s+AGE$/m);
    assert.match(wide.stdout, /^refused\s+.*Configured\s+false\s+\+1 inline\s+\/svc\/refused\/\s+\d+s$/m);
    assert.match((await ctl(['get', 'sessions', '-o', 'wide'])).stdout, /^NAME\s+USER\s+TYPE\s+EXPIRES\s+CREDENTIAL\s+AGE$/m);
    const bad = await ctl(['get', 'svc', '-o', 'tall']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unknown output format "tall" \(use table, wide, yaml or json\)/);
    await ctl(['delete', 'svc', 'refused']);
  });

  test('--dry-run changes nothing; --prune deletes what is absent', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'x.yaml'), 'kind: Group\nmetadata: {name: g-a}\n---\nkind: Group\nmetadata: {name: g-b}\n');
    const dry = await ctl(['apply', dir, '--dry-run']);
    assert.match(dry.stdout, /group\/g-a created \(dry run\)/);
    await assert.rejects(tc.api.get('Group', 'g-a'), (e: OcteliumError) => e.code === 'OCT_ERR_NOT_FOUND');
    assert.equal((await ctl(['apply', dir])).code, 0);
    writeFileSync(join(dir, 'x.yaml'), 'kind: Group\nmetadata: {name: g-a}\n');
    // Pruning would delete group/dev, which user dana refers to: refused, and the whole apply is undone.
    const refused = await ctl(['apply', dir, '--prune', '--include', 'group']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot delete group\/dev: still referenced by user\/dana/);
    await tc.api.get('Group', 'g-b');
    writeFileSync(join(dir, 'x.yaml'), 'kind: Group\nmetadata: {name: g-a}\n---\nkind: Group\nmetadata: {name: dev}\n');
    const pruned = await ctl(['apply', dir, '--prune', '--include', 'group']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.deepEqual(pruned.stdout.trim().split('\n').sort(), ['group/dev unchanged', 'group/g-a unchanged', 'group/g-b deleted']);
    await assert.rejects(tc.api.get('Group', 'g-b'));
    await tc.api.get('Group', 'octelium-admins'); // system objects are never pruned
  });
});

describe('octeliumctl delete, create, secrets', () => {
  test('delete refuses to break a reference, then works once it is gone', async () => {
    await ctl(['apply', '-'], 'kind: User\nmetadata: {name: srv}\nspec: {type: WORKLOAD}\n---\nkind: Service\nmetadata: {name: served}\nspec: {mode: HTTP, config: {upstream: {url: "http://localhost:8080", user: srv}}}\n');
    const refused = await ctl(['delete', 'user', 'srv']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /cannot delete user\/srv: still referenced by service\/served \(spec\.config\.upstream\.user\)/);
    assert.equal((await ctl(['delete', 'svc', 'served'])).stdout.trim(), 'service/served deleted');
    assert.equal((await ctl(['delete', 'user', 'srv'])).code, 0);
    const gone = await ctl(['get', 'user', 'srv']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /user "srv" not found/);
  });

  test('create cred prints each token type once, as JSON', async () => {
    await tc.api.apply({ resources: [{ apiVersion: 'core/v1', kind: 'User', metadata: { name: 'wl1' }, spec: { type: 'WORKLOAD' } }] });
    const a = JSON.parse((await ctl(['create', 'cred', 'wl1-auth', '--user', 'wl1', '--type', 'auth-token', '-o', 'json'])).stdout);
    assert.match(a.authenticationToken, /^oct_/);
    const b = JSON.parse((await ctl(['create', 'cred', 'wl1-at', '--user', 'wl1', '--type', 'access-token', '--expire-in', '1week', '-o', 'json'])).stdout);
    assert.match(b.accessToken, /^oct_/);
    assert.ok(Date.parse(b.expiresAt) > Date.now() + 6 * 86400_000);
    const c = JSON.parse((await ctl(['create', 'cred', 'wl1-oauth', '--user', 'wl1', '--type', 'oauth2', '-o', 'json'])).stdout);
    assert.ok(c.clientID && c.clientSecret);
    const listed = await ctl(['get', 'cred', 'wl1-at', '-o', 'json']);
    assert.ok(!listed.stdout.includes(b.accessToken), 'token is shown only at creation');
    // The stored form is a hash: the raw token appears nowhere in the database file.
    const db = readFileSync(join(tc.dataDir, 'octelium.db-wal')).toString('latin1') + readFileSync(join(tc.dataDir, 'octelium.db')).toString('latin1');
    assert.ok(!db.includes(b.accessToken) && !db.includes(c.clientSecret) && !db.includes(a.authenticationToken));
  });

  test('secret values never appear in get output', async () => {
    const r = await ctl(['create', 'secret', 'my-api-key', '--value', 'sk-super-secret-123']);
    assert.equal(r.stdout.trim(), 'secret/my-api-key created');
    for (const args of [['get', 'secret'], ['get', 'secret', 'my-api-key', '-o', 'yaml'], ['get', 'secret', '-o', 'json']]) {
      const out = await ctl(args);
      assert.equal(out.code, 0);
      assert.match(out.stdout, /my-api-key/);
      assert.ok(!out.stdout.includes('sk-super-secret-123'), args.join(' '));
    }
    const skipped = await ctl(['apply', '-'], 'kind: Secret\nmetadata: {name: s2}\ndata: {value: v}\n');
    assert.match(skipped.stderr, /secret\/s2 skipped \(use --include-secret/);
    const applied = await ctl(['apply', '-', '--include-secret'], 'kind: Secret\nmetadata: {name: s2}\ndata: {value: v}\n');
    assert.match(applied.stdout, /secret\/s2 created/);
  });
});

describe('bad input', () => {
  test('YAML syntax error names file, document and line', async () => {
    const dir = tempDir();
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'kind: Group\nmetadata: {name: ok1}\n---\nkind: Group\nmetadata: [oops\n');
    const r = await ctl(['apply', f]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: document 2 \\(line \\d+\\): YAML syntax error`));
  });

  test('missing kind / name, unknown field, wrong type: each with its path', async () => {
    const r = await ctl(['apply', '-'], [
      'metadata: {name: a}\nspec: {}',
      'kind: Group\nmetadata: {}',
      'kind: Service\nmetadata: {name: x}\nspec:\n  config:\n    upstrem: {url: "http://a"}',
      'kind: Service\nmetadata: {name: y}\nspec: {port: "eighty"}',
      'kind: Gizmo\nmetadata: {name: z}',
    ].join('\n---\n'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /<stdin>: document 1 \(line \d+\): kind: required field/);
    assert.match(r.stderr, /document 2 \(line \d+\): metadata\.name: required field/);
    assert.match(r.stderr, /document 3 \(line 11\): spec\.config\.upstrem: unknown field/);
    assert.match(r.stderr, /document 4 \(line \d+\): spec\.port: expected number, got string/);
    assert.match(r.stderr, /document 5 \(line \d+\): kind: unknown kind "Gizmo"/);
    assert.match(r.stderr, /nothing applied; 5 error\(s\)/);
  });

  test('a directory with one bad file applies nothing and lists every error', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, '1-good.yaml'), 'kind: Group\nmetadata: {name: never-applied}\n');
    writeFileSync(join(dir, '2-bad.yaml'), 'kind: Group\nmetadata: {name: g}\nspec: {colour: red}\n---\nkind: User\nmetadata: {name: u}\nspec: {type: ROBOT}\n');
    const r = await ctl(['apply', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /2-bad\.yaml: document 1 \(line 3\): spec\.colour: unknown field/);
    assert.match(r.stderr, /2-bad\.yaml: document 2 \(line \d+\): spec\.type:/);
    await assert.rejects(tc.api.get('Group', 'never-applied'));
  });

  test('a CEL error rejects the apply with the rule path', async () => {
    const r = await ctl(['apply', '-'], 'kind: Policy\nmetadata: {name: broken}\nspec:\n  rules:\n    - effect: ALLOW\n      condition: {match: "ctx.user.metadata.name == "}\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /policy\/broken/);
    assert.match(r.stderr, /spec\.rules\[0\]\.condition\.match/);
    await assert.rejects(tc.api.get('Policy', 'broken'));
  });

  test('cluster unreachable, bad token', async () => {
    const down = await ctl(['get', 'svc'], undefined, { OCTELIUM_DOMAIN: 'localhost:1' });
    assert.equal(down.code, 4);
    assert.match(down.stderr, /cannot reach cluster at http:\/\/localhost:1/);
    const bad = await ctl(['get', 'svc'], undefined, { OCTELIUM_ACCESS_TOKEN: 'oct_not-a-real-token' });
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /invalid or expired token.*octelium login/);
  });
});

describe('octelium login / status / logout', () => {
  test('login stores a Session; status shows it; logout revokes it', async () => {
    const home = tempDir('octelium-home-');
    const e = { HOME: home, OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_ACCESS_TOKEN: '' };
    const token = readFileSync(join(tc.dataDir, 'bootstrap-token'), 'utf8').trim();
    const login = await runBin('octelium', ['login', '--auth-token', token], { env: e });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Logged in to .* as root/);
    const status = await runBin('octelium', ['status', '-o', 'json'], { env: e });
    const s = JSON.parse(status.stdout);
    assert.equal(s.user.name, 'root');
    assert.equal(s.session.type, 'CLIENT');
    const viaCtl = await runBin('octeliumctl', ['get', 'ns'], { env: e });
    assert.match(viaCtl.stdout, /^default/m);
    assert.equal((await runBin('octelium', ['logout'], { env: e })).code, 0);
    const after = await runBin('octeliumctl', ['get', 'ns'], { env: e });
    assert.equal(after.code, 3);
    assert.match(after.stderr, /not logged in/);
    // A garbage token: say where tokens come from, not "run the same command again".
    const badLogin = await runBin('octelium', ['login', '--auth-token', 'oct_wrong'], { env: e });
    assert.equal(badLogin.code, 3);
    assert.match(badLogin.stderr, /refused this auth token/);
    assert.match(badLogin.stderr, /bootstrap-token/);
    assert.match(badLogin.stderr, /octeliumctl create cred NAME --user USER --type auth-token/);
    assert.doesNotMatch(badLogin.stderr, /hint:/);
    const badEnv = await runBin('octeliumctl', ['get', 'ns'], { env: { ...e, OCTELIUM_AUTH_TOKEN: 'garbage' } });
    assert.equal(badEnv.code, 3);
    assert.match(badEnv.stderr, /refused this auth token.*octeliumctl create cred/s);
  });
});
