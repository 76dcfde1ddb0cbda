import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { oauth2Token, service, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

let tc: TestCluster;
let echo: TestUpstream, tokenServer: TestUpstream;
let token: string;
let issued = 0;

const get = async (svc: string, headers: Record<string, string> = {}) => {
  const r = await request(`${tc.cluster.url}/svc/${svc}/`, { headers });
  await r.body.dump();
  return r.statusCode;
};

before(async () => {
  tc = await startTestCluster();
  echo = await startUpstream((_req, res) => void res.end('ok'));
  // An upstream OAuth2 authorization server: the gateway must fetch, cache and reuse its token.
  tokenServer = await startUpstream((_req, res, body) => {
    const form = new URLSearchParams(body);
    res.setHeader('content-type', 'application/json');
    if (form.get('client_id') !== 'gw' || form.get('client_secret') !== 'upstream-client-secret') {
      res.statusCode = 401;
      return void res.end('{"error":"invalid_client"}');
    }
    res.end(JSON.stringify({ access_token: `up-token-${++issued}`, token_type: 'Bearer', expires_in: 3600 }));
  });
  const secret = (name: string, value: string) => ({ apiVersion: 'core/v1' as const, kind: 'Secret' as const, metadata: { name }, spec: {}, data: { value } });
  await tc.api.apply({
    resources: [
      user('alice'),
      secret('basic-pw', 'hunter2'),
      secret('api-key', 'key-123'),
      secret('oauth-secret', 'upstream-client-secret'),
      secret('octelium-style', 'tok-abc'),
      service('private', { isPublic: false, config: { upstream: { url: echo.url } } }),
      service('anon', { isAnonymous: true, config: { upstream: { url: echo.url } } }),
      service('basic', { config: { upstream: { url: echo.url }, http: { auth: { basic: { username: 'svc', password: { fromSecret: 'basic-pw' } } } } } }),
      service('custom', { config: { upstream: { url: echo.url }, http: { auth: { custom: { header: 'X-API-Key', value: { fromSecret: 'api-key' } } } } } }),
      service('bearer-octelium', { config: { upstream: { url: echo.url }, http: { auth: { bearer: { accessToken: { fromSecret: 'octelium-style' } } } } } }),
      service('oauth-up', { config: { upstream: { url: echo.url }, http: { auth: { oauth2ClientCredentials: { tokenURL: `${tokenServer.url}/token`, clientID: 'gw', clientSecret: { fromSecret: 'oauth-secret' } } } } } }),
      service('missing-secret', { config: { upstream: { url: echo.url }, http: { auth: { bearer: { fromSecret: 'not-created-yet' } } } } }),
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await Promise.all([echo.close(), tokenServer.close()]);
  await tc.close();
});

test('isPublic: false refuses clientless tokens but admits a client Session', async () => {
  assert.equal(await get('private', { authorization: `Bearer ${token}` }), 403);
  const { token: auth } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'alice-auth' }, spec: { type: 'AUTH_TOKEN', user: 'alice' } });
  const session = await tc.api.login(auth.authenticationToken!);
  assert.equal(await get('private', { 'x-octelium-auth': session.accessToken }), 200);
});

test('isAnonymous: true needs no credential and never forwards one', async () => {
  assert.equal(await get('anon'), 200);
  assert.equal(await get('anon', { authorization: `Bearer ${token}` }), 200);
  assert.equal(echo.requests.at(-1)!.headers.authorization, undefined);
  tc.cluster.accessLogs.flush();
  const log = tc.cluster.accessLogs.query({ service: 'anon' }, 10).at(-1)!;
  assert.equal(log.entry.common.isAnonymous, true);
  assert.equal(log.entry.common.status, 'ALLOWED');
});

test('upstream credentials: basic, custom header, Octelium bearer shape', async () => {
  assert.equal(await get('basic', { authorization: `Bearer ${token}` }), 200);
  assert.equal(echo.requests.at(-1)!.headers.authorization, `Basic ${Buffer.from('svc:hunter2').toString('base64')}`);
  assert.equal(await get('custom', { authorization: `Bearer ${token}` }), 200);
  assert.equal(echo.requests.at(-1)!.headers['x-api-key'], 'key-123');
  assert.equal(echo.requests.at(-1)!.headers.authorization, undefined);
  assert.equal(await get('bearer-octelium', { authorization: `Bearer ${token}` }), 200);
  assert.equal(echo.requests.at(-1)!.headers.authorization, 'Bearer tok-abc');
});

test('upstream oauth2ClientCredentials: fetched once, cached, refreshed when the Secret changes', async () => {
  for (let i = 0; i < 3; i++) assert.equal(await get('oauth-up', { authorization: `Bearer ${token}` }), 200);
  assert.equal(echo.requests.at(-1)!.headers.authorization, 'Bearer up-token-1');
  assert.equal(issued, 1, 'one token request for three proxied requests');
  await tc.api.update({ apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'oauth-secret' }, spec: {}, data: { value: 'rotated-wrong' } });
  assert.equal(await get('oauth-up', { authorization: `Bearer ${token}` }), 502, 'the rotated (wrong) secret is used at once');
});

test('a Service whose upstream Secret is missing fails closed with 502, not an unauthenticated request', async () => {
  const before = echo.requests.length;
  assert.equal(await get('missing-secret', { authorization: `Bearer ${token}` }), 502);
  assert.equal(echo.requests.length, before);
});
