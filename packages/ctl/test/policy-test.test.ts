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
  assert.equal(deny.code, 0, deny.stderr);
  assert.match(deny.stdout, /^DENIED \(NO_POLICY_MATCH\)/);
  assert.match(deny.stdout, /service\/my-mcp.*ALLOW\s+\d+\s+false/);
  const bad = await ctl(['policy', 'test', '--service', 'my-mcp', '--user', 'nobody', '--tool', 'add']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /user "nobody" not found/);
});
