/**
 * `octelium connect` against a real cluster when its Session ends while it runs: revoked by an admin, or logged out.
 * Without an auth token to get a new Session it stops (exit 3) and says to log in again, instead of retrying forever;
 * with one it renews and keeps serving, and stops only once the auth token is refused too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterOptions } from '@octelium-ts/cluster';
import { runBin, service, startBin, startTestCluster, tempDir, user, type BinProcess, type TestCluster } from '@octelium-ts/cluster/testing';

let tc: TestCluster;

async function authToken(userName: string, cred: string): Promise<string> {
  return (await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: cred }, spec: { type: 'AUTH_TOKEN', user: userName } })).token.authenticationToken!;
}

/** A HOME with a stored `octelium login` Session of `userName`; returns it and the Session's name. */
async function loggedIn(userName: string): Promise<{ home: string; session: string }> {
  const home = tempDir('octelium-home-');
  const r = await runBin('octelium', ['login', '--auth-token', await authToken(userName, `${userName}-${Math.random().toString(36).slice(2, 8)}`)], { env: { HOME: home, OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_AUTH_TOKEN: '' } });
  assert.equal(r.code, 0, r.stderr);
  return { home, session: r.stdout.match(/session (\S+),/)![1] };
}

before(async () => {
  // The hub re-checks connected agents' Sessions every 30 s by default; 200 ms keeps the test short.
  tc = await startTestCluster({ options: { tunnel: { reauthenticateMs: 200 } as ClusterOptions['tunnel'] } });
  await tc.api.apply({ resources: [user('mcp-01'), service('laptop-mcp', { config: { upstream: { url: 'http://127.0.0.1:9', user: 'mcp-01' } } })] });
});
after(() => tc.close());

/** The agent's exit code once it exits by itself, or 'still running' after `ms`. */
function exitCode(agent: BinProcess, ms = 10_000): Promise<number | null | 'still running'> {
  if (agent.proc.exitCode !== null) return Promise.resolve(agent.proc.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('still running'), ms);
    agent.proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

const env = (home: string, extra: Record<string, string> = {}) => ({ HOME: home, OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_AUTH_TOKEN: '', OCTELIUM_ACCESS_TOKEN: '', ...extra });

test('the stored Session is revoked by an admin: connect exits 3 and says to log in again', async () => {
  const { home, session } = await loggedIn('mcp-01');
  const agent = startBin('octelium', ['connect', '--serve', 'laptop-mcp'], env(home));
  try {
    await agent.waitFor(/connected to .* as mcp-01; serving laptop-mcp/);
    const del = await runBin('octeliumctl', ['delete', 'session', session], { env: { OCTELIUM_DOMAIN: tc.cluster.domain, OCTELIUM_ACCESS_TOKEN: tc.adminToken } });
    assert.equal(del.code, 0, del.stderr);
    assert.equal(await exitCode(agent), 3, agent.output());
    assert.match(agent.output(), /octelium: cluster refused the Session \(401\)/);
    assert.match(agent.output(), /revoked, expired or logged out: run `octelium login --domain localhost:\d+` again/);
    assert.equal((await runBin('octelium', ['status', '-o', 'json'], { env: env(home) })).code, 3, 'status says the Session is gone too');
  } finally {
    await agent.stop('SIGKILL');
  }
});

test('octelium logout while connect runs: the agent stops the same way', async () => {
  const { home } = await loggedIn('mcp-01');
  const agent = startBin('octelium', ['connect', '--serve', 'laptop-mcp'], env(home));
  try {
    await agent.waitFor(/connected to .* as mcp-01/);
    assert.equal((await runBin('octelium', ['logout'], { env: env(home) })).code, 0);
    assert.equal(await exitCode(agent), 3, agent.output());
    assert.match(agent.output(), /run `octelium login --domain \S+` again/);
  } finally {
    await agent.stop('SIGKILL');
  }
});

test('with an auth token the Session is renewed; once the Credential is deleted the agent stops', async () => {
  const token = await authToken('mcp-01', 'mcp-01-renewable');
  const agent = startBin('octelium', ['connect', '--serve', 'laptop-mcp', '--auth-token', token], env(tempDir('octelium-home-')));
  try {
    await agent.waitFor(/connected to .* as mcp-01/);
    const first = (await tc.api.list('Session', { user: 'mcp-01' })).items.find((s) => (s.status as { credentialRef?: { name: string } }).credentialRef?.name === 'mcp-01-renewable')!;
    await tc.api.delete('Session', first.metadata.name);
    // Disconnected by the hub, refused once, renewed from the auth token, connected again.
    await agent.waitFor(/disconnected[^\n]*\n(?:.*\n)*connected to .* as mcp-01/, 10_000);
    assert.equal(agent.proc.exitCode, null, 'still running');
    await tc.api.delete('Credential', 'mcp-01-renewable'); // takes its Sessions with it
    assert.equal(await exitCode(agent), 3, agent.output());
    assert.match(agent.output(), /renewing the Session failed: localhost:\d+ refused this auth token \(invalid or expired auth token\)/);
  } finally {
    await agent.stop('SIGKILL');
  }
});
