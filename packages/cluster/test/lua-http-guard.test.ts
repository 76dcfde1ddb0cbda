/**
 * Lua http.client behind the SSRF guard (net/ssrf.ts), through a real cluster: no loopback, private, link-local
 * or unspecified addresses (literal or resolved), never the cluster's own listener, redirects not followed;
 * `lua.allowPrivateNetworks: true` is the explicit opt-in; `<svc>.svc` names reach Service upstreams.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { oauth2Token, service, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

let tc: TestCluster;
let internal: TestUpstream, echo: TestUpstream;
let token: string;

/** Calls the URL in `x-target` and hands the outcome to the upstream as `x-result`. */
const SCRIPT = `function onRequest(ctx)
  local resp, err = http.client():request():get(octelium.req.getRequestHeader("x-target"))
  if resp then
    octelium.req.setRequestHeader("x-result", tostring(resp:code()) .. " " .. resp:body())
  else
    octelium.req.setRequestHeader("x-result", "error: " .. tostring(err))
  end
end`;

before(async () => {
  tc = await startTestCluster();
  // Stands in for something only reachable from inside: a metadata service, an admin port.
  internal = await startUpstream((req, res) => {
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/secret' }).end('moved');
    res.end('secret');
  });
  echo = await startUpstream((req, res) => void res.end(String(req.headers['x-result'] ?? 'no result')));
  const lua = (name: string, extra: Record<string, unknown> = {}) =>
    service(name, { config: { upstream: { url: echo.url }, http: { plugins: [{ name: 'fetch', lua: { inline: SCRIPT, ...extra } }] } } });
  await tc.api.apply({
    resources: [
      user('alice'),
      lua('lua-public'),
      lua('lua-private', { allowPrivateNetworks: true }),
      service('internal-api', { config: { upstream: { url: internal.url } } }),
      service('tunnelled', { config: { upstream: { url: 'http://localhost:8080', user: 'alice' } } }),
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await Promise.all([internal.close(), echo.close()]);
  await tc.close();
});

async function fetchVia(svc: string, target: string): Promise<string> {
  const r = await request(`${tc.cluster.url}/svc/${svc}/x`, { headers: { authorization: `Bearer ${token}`, 'x-target': target } });
  assert.equal(r.statusCode, 200);
  return r.body.text();
}

const port = () => new URL(internal.url).port;

describe('without allowPrivateNetworks', () => {
  test('loopback, link-local (cloud metadata), unspecified and IPv6 private targets are refused before any request', async () => {
    const targets = [
      internal.url,
      `http://localhost:${port()}/`, // a DNS name that resolves to loopback
      `http://[::1]:${port()}/`,
      `http://[::ffff:127.0.0.1]:${port()}/`,
      `http://0.0.0.0:${port()}/`,
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://10.0.0.1/',
    ];
    for (const target of targets) {
      const result = await fetchVia('lua-public', target);
      assert.match(result, /^error: .*request refused: .*lua\.allowPrivateNetworks: true/, `${target} → ${result}`);
    }
    assert.equal(internal.requests.length, 0, 'nothing reached the internal server');
  });

  test('<svc>.svc names still reach their Service upstream (the admin chose that address)', async () => {
    assert.equal(await fetchVia('lua-public', 'http://internal-api.default.svc/v1'), '200 secret');
    assert.equal(internal.requests.at(-1)?.url, '/v1');
    assert.match(await fetchVia('lua-public', 'http://tunnelled.svc/'), /^error: .*served through a tunnel/, 'a tunnelled upstream is not dialled on the cluster host');
  });
});

describe('with allowPrivateNetworks: true', () => {
  test('private targets are reachable; the cluster\'s own listener is not; redirects are not followed', async () => {
    const before = internal.requests.length;
    assert.equal(await fetchVia('lua-private', `${internal.url}/data`), '200 secret');
    assert.equal(await fetchVia('lua-private', `http://localhost:${port()}/data`), '200 secret');
    for (const self of [`${tc.cluster.url}/api/v1/services`, `http://127.0.0.1:${new URL(tc.cluster.url).port}/`]) {
      assert.match(await fetchVia('lua-private', self), /^error: .*request refused: .*the cluster's own listener/, self);
    }
    assert.equal(await fetchVia('lua-private', `${internal.url}/redirect`), '302 moved', 'the script sees the redirect');
    assert.deepEqual(internal.requests.slice(before).map((r) => r.url), ['/data', '/data', '/redirect'], '/secret was never fetched');
  });

  test('the opt-in is validated by the schema', async () => {
    const bad = service('lua-bad', { config: { upstream: { url: echo.url }, http: { plugins: [{ name: 'fetch', lua: { inline: SCRIPT, allowPrivateNetworks: 'yes' } }] } } });
    await assert.rejects(tc.api.apply({ resources: [bad] }), /allowPrivateNetworks/);
  });
});
