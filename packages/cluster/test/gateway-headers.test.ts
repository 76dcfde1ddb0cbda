/**
 * What the gateway forwards of a client's request head (gateway/headers.ts): hop-by-hop headers and those the
 * client lists in `Connection` stay on the client's hop, the client's credentials never reach the upstream, and
 * the `X-Forwarded-*` headers are the gateway's own, not the client's claims (the cluster is the edge by default).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { oauth2Token, service, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { rawRequest } from './helpers/raw-http.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

let tc: TestCluster;
let echo: TestUpstream;
let token: string;

before(async () => {
  tc = await startTestCluster();
  echo = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2', connection: 'x-upstream-hop', 'x-upstream-hop': 'secret-hop', 'keep-alive': 'timeout=5' });
    res.end('{}');
  });
  await tc.api.apply({
    resources: [
      user('header-user'),
      service('heads', { config: { upstream: { url: echo.url } } }),
      { apiVersion: 'core/v1', kind: 'Policy', metadata: { name: 'header-user-all' }, spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.user.metadata.name == "header-user"' } }] } },
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'header-user');
});

after(async () => {
  await echo.close();
  await tc.close();
});

test('hop-by-hop, Connection-listed and credential headers stay on the client hop; X-Forwarded-* are the gateway\'s', async () => {
  // Raw bytes: client libraries manage Connection themselves and would not send this head as written.
  const port = Number(new URL(tc.cluster.url).port);
  const res = await rawRequest(port, [
    'GET /svc/heads/x HTTP/1.1', `host: localhost:${port}`, `authorization: Bearer ${token}`,
    'connection: keep-alive, x-client-hop', 'x-client-hop: drop-me', 'x-kept: keep-me', 'te: trailers',
    'proxy-authorization: Basic c2VjcmV0', 'x-forwarded-for: 203.0.113.9', 'x-forwarded-host: evil.example', '', '',
  ].join('\r\n'));
  assert.equal(res.status, 200);
  // Response side: the upstream's Connection-listed header does not reach the client either.
  assert.doesNotMatch(res.head, /x-upstream-hop/i);
  const seen = echo.requests.at(-1)!.headers;
  assert.equal(seen['x-kept'], 'keep-me');
  for (const h of ['x-client-hop', 'te', 'proxy-authorization', 'authorization']) assert.equal(seen[h], undefined, `${h} was forwarded`);
  assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen['x-forwarded-host'], `localhost:${port}`);
  assert.equal(seen['x-forwarded-proto'], 'http');
});
