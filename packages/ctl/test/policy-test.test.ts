import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SEED_DIR, runBin, startTestCluster, tempDir, type TestCluster } from '@octelium-ts/cluster/testing';

let tc: TestCluster;
let env: Record<string, string>;
const ctl = (args: string[]) => runBin('octeliumctl', args, { env });

before(async () => {
  tc = await startTestCluster();
  env = { OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_ACCESS_TOKEN: tc.adminToken, HOME: tempDir('octelium-home-') };
  await tc.api.apply({ resources: [{ apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN' } }] });
  const applied = await ctl(['apply', join(SEED_DIR, '04-l7-policy.yaml')]);
  assert.equal(applied.code, 0, applied.stderr);
});
after(() => tc.close());

test('octeliumctl policy test: the seed policy allows add a=4 and denies a=5000, naming each rule', async () => {
  const allow = await ctl(['policy', 'test', '--service', 'my-mcp', '--user', 'alice', '--tool', 'add', '--args', '{"a": 4, "b": 2000}', '-o', 'json']);
  assert.equal(allow.code, 0, allow.stderr);
  const a = JSON.parse(allow.stdout);
  assert.equal(a.allowed, true);
  assert.equal(a.reason.type, 'POLICY_MATCH');
  assert.equal(a.rules.length, 1);
  assert.equal(a.rules[0].matched, true);
  const deny = await ctl(['policy', 'test', '--service', 'my-mcp', '--user', 'alice', '--tool', 'add', '--args', '{"a": 5000, "b": 2000}']);
  assert.equal(deny.code, 2, 'DENIED exits 2');
  assert.match(deny.stdout, /^DENIED \(NO_POLICY_MATCH\)/);
  assert.match(deny.stdout, /service\/my-mcp.*ALLOW\s+\d+\s+NOT_MATCHED/);
  const bad = await ctl(['policy', 'test', '--service', 'my-mcp', '--user', 'nobody', '--tool', 'add']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /user "nobody" not found/);
});

test('policy test: --method initialize is a JSON-RPC method; a User DENY on params.name does not deny it; per-rule results; DENIED exits 2', async () => {
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'bob' }, spec: { type: 'HUMAN', authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'no-subtract', effect: 'DENY', condition: { match: 'ctx.request.http.bodyMap.params.name == "subtract"' } }] } }] } } },
      { apiVersion: 'core/v1', kind: 'Service', metadata: { name: 'calc' }, spec: { mode: 'HTTP', config: { upstream: { url: 'http://127.0.0.1:1' } }, authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'everyone', effect: 'ALLOW', condition: { match: 'true' } }] } }] } } },
    ],
  });
  const init = await ctl(['policy', 'test', '--service', 'calc', '--user', 'bob', '--method', 'initialize', '--params', '{"protocolVersion": "2025-06-18"}', '-o', 'json']);
  assert.equal(init.code, 0, init.stderr + init.stdout);
  const i = JSON.parse(init.stdout);
  assert.equal(i.allowed, true);
  assert.equal(i.request.method, 'POST', 'initialize is not an HTTP method: sent as POST with a JSON-RPC body');
  assert.deepEqual(i.request.bodyMap, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18' } });
  const denyRule = i.rules.find((r: { rule: string }) => r.rule === 'no-subtract');
  assert.equal(denyRule.outcome, 'NOT_MATCHED');
  assert.deepEqual(denyRule.missing, ['No such key: name']);

  const list = await ctl(['policy', 'test', '--service', 'calc', '--user', 'bob', '--jsonrpc-method', 'tools/list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ALLOWED \(POLICY_MATCH\) by rule "everyone"/);
  assert.match(list.stdout, /request: POST \/ tools\/list/);
  assert.match(list.stdout, /no-subtract\s+DENY\s+0\s+NOT_MATCHED\s+missing input → false: No such key: params/);

  const sub = await ctl(['policy', 'test', '--service', 'calc', '--user', 'bob', '--tool', 'subtract', '--args', '{"a": 1, "b": 2}']);
  assert.equal(sub.code, 2, sub.stderr);
  assert.match(sub.stdout, /^DENIED \(POLICY_MATCH\) by rule "no-subtract"/);
  assert.match(sub.stdout, /no-subtract\s+DENY\s+0\s+MATCHED/);

  const get = await ctl(['policy', 'test', '--service', 'calc', '--user', 'bob', '--method', 'get', '-o', 'json']);
  assert.equal(get.code, 0, get.stderr);
  assert.equal(JSON.parse(get.stdout).request.method, 'GET', 'HTTP methods keep working, in any case');
  const both = await ctl(['policy', 'test', '--service', 'calc', '--user', 'bob', '--jsonrpc-method', 'tools/list', '--tool', 'add']);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /use only one of --jsonrpc-method, --tool/);
});
