import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '@octelium-ts/shared';
import { startTestCluster } from './helpers/testing.js';
import { samlIdp, type AssertionOptions } from './helpers/saml-idp.js';

const cookieOf = (res: Response, name: string) => res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith(`${name}=`));

/**
 * SAML 2.0 login (issue 13 item 8b): the IdP side is played with @node-saml/node-saml itself, signing with a key
 * pair made by this test. A browser's round trip is replayed with fetch: /login/<idp> → the IdP (HTTP-Redirect
 * AuthnRequest) → a cross-site POST of the Response to /callback (no cookie, as browsers send it) → GET /callback
 * with the login cookie → the octelium_auth cookie.
 */
test('SAML login: signed assertion → HUMAN Session; unsigned, foreign key, tampered, wrong audience/recipient/InResponseTo, expired, replayed refused', async (t) => {
  const idp = samlIdp();
  const tc = await startTestCluster();
  t.after(() => tc.close());
  const cluster = tc.cluster.url;
  const acs = `${cluster}/callback`;
  const sp = `${cluster}/saml`;
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'corp-saml', displayName: 'Corp SAML' }, spec: { saml: { metadata: idp.metadata } } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN', email: 'alice@example.com' } },
    ] as Resource[],
  });
  const sessions = async () => (await tc.api.list('Session', { user: 'alice' })).items.length;

  /** Starts a login; `answer` turns the AuthnRequest into the Response the IdP posts back. */
  async function loginWith(answer: (r: { id: string }) => Partial<AssertionOptions>) {
    const start = await fetch(`${cluster}/login/corp-saml?redirect=%2Fportal`, { redirect: 'manual' });
    assert.equal(start.status, 303);
    const r = await idp.readRequest(start.headers.get('location')!);
    assert.equal(r.acs, acs);
    assert.equal(r.issuer, sp);
    const SAMLResponse = idp.response({ inResponseTo: r.id, recipient: acs, audience: sp, email: 'alice@example.com', ...answer(r) });
    const post = await fetch(acs, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ SAMLResponse, RelayState: r.relayState }), headers: { origin: 'https://idp.saml.example' } });
    if (post.status !== 303) return { status: post.status, body: await post.text(), SAMLResponse, relayState: r.relayState };
    const done = await fetch(new URL(post.headers.get('location')!, cluster), { redirect: 'manual', headers: { cookie: cookieOf(start, 'octelium_login')! } });
    return { status: done.status, body: await done.text(), res: done, SAMLResponse, relayState: r.relayState };
  }

  const fixedId = '_a-reused-assertion-id';
  const ok = await loginWith(() => ({ id: fixedId }));
  assert.equal(ok.status, 303, ok.body);
  assert.equal(ok.res!.headers.get('location'), '/portal');
  const cookie = cookieOf(ok.res!, 'octelium_auth')!;
  assert.ok(cookie);
  assert.match(await (await fetch(`${cluster}/portal`, { headers: { cookie } })).text(), /Signed in as <strong>alice<\/strong>/);
  const [s] = (await tc.api.list('Session', { user: 'alice' })).items;
  assert.equal((s.status as { authentication: { info: { identityProvider: { identityProviderRef: { name: string } } } } }).authentication.info.identityProvider.identityProviderRef.name, 'corp-saml');
  assert.equal(((await tc.api.get('IdentityProvider', 'corp-saml')).status as { state: string }).state, 'Ready');

  for (const [name, answer, why] of [
    ['unsigned', () => ({ sign: 'none' as const }), /Invalid signature/],
    ['signed by another key', () => ({ sign: 'other' as const }), /Invalid signature/],
    ['tampered after signing', () => ({ tamperEmail: 'root@example.com' }), /Invalid signature/],
    ['wrong audience', () => ({ audience: 'https://other-sp.example' }), /audience mismatch/],
    ['wrong recipient', () => ({ recipient: 'https://evil.example/acs' }), /Recipient is not/],
    ['expired', () => ({ notOnOrAfter: new Date(Date.now() - 120_000) }), /expired|No valid subject confirmation/],
    ['InResponseTo another request', () => ({ inResponseTo: '_not-our-request' }), /InResponseTo is not valid/],
    ['another issuer', () => ({ issuer: 'https://evil-idp.example' }), /issued by/],
    ['replayed assertion ID', () => ({ id: fixedId }), /already used/],
  ] as const) {
    const r = await loginWith(answer);
    assert.equal(r.status, 400, `${name}: ${r.body.slice(-400)}`);
    assert.match(r.body, why, name);
    assert.doesNotMatch(r.body, /<samlp:|PHNhbWxw/, `${name}: the response is not echoed`);
  }
  // The same Response posted again (its login is used up), a POST with no or a hostile body: 400, nothing made.
  const again = await fetch(acs, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ SAMLResponse: ok.SAMLResponse, RelayState: ok.relayState }) });
  assert.equal(again.status, 400);
  for (const body of ['', 'RelayState=x', 'SAMLResponse=%%%&RelayState=y', `SAMLResponse=${'A'.repeat(600 * 1024)}&RelayState=z`, 'RelayState=a&RelayState=b']) {
    const r = await fetch(acs, { method: 'POST', redirect: 'manual', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.ok(r.status >= 400 && r.status < 500, `${body.slice(0, 30)} → ${r.status}`);
  }
  assert.equal(await sessions(), 1, 'only the good login made a Session');
  const dump = JSON.stringify([await tc.api.list('IdentityProvider'), await tc.api.list('Session'), await tc.api.accessLogs({ limit: 1000 })]);
  assert.doesNotMatch(dump, new RegExp(cookie.split('=')[1]));
  assert.doesNotMatch(dump, /PHNhbWxw/);
  assert.equal(tc.cluster.faults.counts().size ?? 0, 0);
});
