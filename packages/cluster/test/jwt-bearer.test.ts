import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource } from '@octelium-ts/shared';
import { service, startTestCluster } from './helpers/testing.js';
import { startAssertionIssuer } from './helpers/assertion-issuer.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const SUB = 'repo:org/app:ref:refs/heads/main';

/**
 * RFC 7523 jwt-bearer at /oauth2/token (issue 13 item 7): a CI-style OIDC token, signed by a key made here and
 * served from a local JWKS, becomes a Session of the WORKLOAD User that names its subject. Every broken token is a
 * clear 400 (503 when the IdP's keys cannot be fetched) and creates no Session.
 */
test('jwt-bearer grant: a workload assertion becomes a Session; tampered/expired/wrong-aud/unknown iss or sub/replayed are refused', async (t) => {
  const ci = await startAssertionIssuer();
  const upstream = createServer((req, res) => res.end(`upstream ${req.method}`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const tc = await startTestCluster();
  t.after(async () => {
    await tc.close();
    await ci.close();
    upstream.close();
  });
  const cluster = tc.cluster.url;
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'ci' }, spec: { oidcIdentityToken: { jwksURL: ci.jwksURL, issuer: ci.issuer, audience: 'octelium-test' } } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'ci-bot' }, spec: { type: 'WORKLOAD', authentication: { identities: [{ identityProvider: 'ci', identifier: SUB }] } } },
      // A HUMAN user naming the same identity is never matched: assertions are for workloads.
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'carol' }, spec: { type: 'HUMAN', email: 'carol@example.com', authentication: { identities: [{ identityProvider: 'ci', identifier: 'human-sub' }] } } },
      service('web', { isPublic: false, config: { upstream: { url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } } }),
    ] as Resource[],
  });
  const token = (body: string | URLSearchParams) => fetch(`${cluster}/oauth2/token`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const grant = (assertion: string) => token(new URLSearchParams({ grant_type: JWT_BEARER, assertion }));
  const sessions = async () => (await tc.api.list('Session')).items.filter((s) => ['ci-bot', 'carol'].includes((s.status as { userRef: { name: string } }).userRef.name)).length;

  // The good path: a Session of ci-bot, usable at a Service and at /api/v1/whoami.
  const good = await ci.sign({ sub: SUB, aud: 'octelium-test', jti: 'run-1' });
  const ok = await grant(good);
  assert.equal(ok.status, 200);
  const body = (await ok.json()) as { access_token: string; token_type: string; expires_in: number };
  assert.equal(body.token_type, 'Bearer');
  assert.equal(body.expires_in, 3600);
  assert.equal((await fetch(`${cluster}/svc/web/`, { headers: { authorization: `Bearer ${body.access_token}` } })).status, 200);
  const who = (await (await fetch(`${cluster}/api/v1/whoami`, { headers: { authorization: `Bearer ${body.access_token}` } })).json()) as { user: Resource; session: Resource };
  assert.equal(who.user.metadata.name, 'ci-bot');
  const st = who.session.status as { type: string; authentication: { info: { identityProvider: { identityProviderRef: { name: string }; identifier: string; via: string } } } };
  assert.equal(st.type, 'CLIENT');
  assert.deepEqual([st.authentication.info.identityProvider.identityProviderRef.name, st.authentication.info.identityProvider.identifier, st.authentication.info.identityProvider.via], ['ci', SUB, 'assertion']);
  assert.equal(await sessions(), 1);
  assert.ok(((await (await fetch(`${cluster}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[] }).grant_types_supported.includes(JWT_BEARER));

  // Refusals: each a 400 naming what failed, and no Session.
  const [h, p, s] = (await ci.sign({ sub: SUB, aud: 'octelium-test' })).split('.');
  const tampered = [h, Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'repo:org/other' })).toString('base64url'), s].join('.');
  const noneAlg = [Buffer.from('{"alg":"none"}').toString('base64url'), p, ''].join('.');
  for (const [name, assertion, why] of [
    ['replayed jti', good, /already used/],
    ['tampered', tampered, /signature/],
    ['alg none', noneAlg, /ERR_JOSE_ALG_NOT_ALLOWED|alg/],
    ['signed by another key', await ci.sign({ sub: SUB, aud: 'octelium-test' }, { key: 'other' }), /ERR_JWS_SIGNATURE_VERIFICATION_FAILED|signature/],
    ['expired', await ci.sign({ sub: SUB, aud: 'octelium-test' }, { exp: Math.floor(Date.now() / 1000) - 600 }), /ERR_JWT_EXPIRED|exp/],
    ['wrong aud', await ci.sign({ sub: SUB, aud: 'someone-else' }), /aud/],
    ['unknown iss', await ci.sign({ sub: SUB, aud: 'octelium-test' }, { iss: 'https://evil.example' }), /no oidcIdentityToken IdentityProvider accepts the issuer "https:\/\/evil\.example"/],
    ['unknown sub', await ci.sign({ sub: 'repo:org/other:ref:refs/heads/main', aud: 'octelium-test' }), /no enabled WORKLOAD User has the identity/],
    ['HUMAN user', await ci.sign({ sub: 'human-sub', aud: 'octelium-test' }), /no enabled WORKLOAD User/],
    ['no exp', await ci.sign({ sub: SUB, aud: 'octelium-test' }, { exp: null }), /"exp" claim|missing required/],
    ['not a JWT', 'not-a-jwt', /not a JWT/],
    ['object jti', await ci.sign({ sub: SUB, aud: 'octelium-test', jti: 5 as unknown as string }), /jti/],
  ] as const) {
    const res = await grant(assertion);
    const e = (await res.json()) as { error: string; error_description: string };
    assert.equal(res.status, 400, `${name}: ${JSON.stringify(e)}`);
    assert.equal(e.error, 'invalid_grant', name);
    assert.match(e.error_description, why, name);
  }
  // Malformed requests: 400 invalid_request, never a 500.
  for (const [name, raw] of [
    ['no assertion', `grant_type=${encodeURIComponent(JWT_BEARER)}`],
    ['repeated assertion', `grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=${good}&assertion=${good}`],
    ['huge assertion', `grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=${'a'.repeat(20_000)}`],
    ['bad percent-encoding', `grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=%zz`],
  ] as const) {
    const res = await token(raw);
    assert.equal(res.status, 400, name);
    assert.match(((await res.json()) as { error: string }).error, /^invalid_(request|grant)$/, name);
  }
  const withResource = await token(new URLSearchParams({ grant_type: JWT_BEARER, assertion: await ci.sign({ sub: SUB, aud: 'octelium-test' }), resource: `${cluster}/svc/web/` }));
  assert.equal(((await withResource.json()) as { error: string }).error, 'invalid_target');
  assert.equal(await sessions(), 1, 'no Session from any refused assertion');

  // A token without jti cannot be recognised as replayed: it is accepted again (documented).
  const noJti = await ci.sign({ sub: SUB, aud: 'octelium-test' });
  assert.equal((await grant(noJti)).status, 200);
  assert.equal((await grant(noJti)).status, 200);

  // The IdP's keys unreachable: 503 temporarily_unavailable, and `get idp` says Failed. (Keys cached by jose stay
  // usable, so point the IdP at the dead JWKS under a new URL.)
  ci.down();
  await tc.api.apply({ resources: [{ apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'ci' }, spec: { oidcIdentityToken: { jwksURL: `${ci.jwksURL}?v=2`, issuer: ci.issuer, audience: 'octelium-test' } } }] as Resource[] });
  const down = await grant(await ci.sign({ sub: SUB, aud: 'octelium-test' }));
  assert.equal(down.status, 503);
  assert.equal(((await down.json()) as { error: string }).error, 'temporarily_unavailable');
  assert.equal(((await tc.api.get('IdentityProvider', 'ci')).status as { state: string }).state, 'Failed');

  // No assertion in the AccessLogs, `get` output or Sessions.
  const dump = JSON.stringify([await tc.api.list('Session'), await tc.api.list('IdentityProvider'), await tc.api.accessLogs({ limit: 1000 })]);
  assert.doesNotMatch(dump, new RegExp(good.split('.')[2]));
  assert.doesNotMatch(dump, new RegExp(body.access_token));
  assert.equal(tc.cluster.faults.counts().size ?? 0, 0);
});
