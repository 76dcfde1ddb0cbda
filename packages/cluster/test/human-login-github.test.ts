import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '@octelium-ts/shared';
import { startTestCluster } from './helpers/testing.js';
import { startGitHubStandIn } from './helpers/github-standin.js';

const cookieOf = (res: Response, name: string) => res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith(`${name}=`));

/**
 * The GitHub IdentityProvider (issue 13 item 8a) against a local stand-in for github.com: the OAuth web flow with
 * state and PKCE, then `/user` and `/user/emails`; the account's primary verified email finds the HUMAN User.
 */
test('GitHub login: primary verified email → the HUMAN User; unverified primary, unknown email, bad secret refused', async (t) => {
  const gh = await startGitHubStandIn({ clientId: 'Iv1.test', clientSecret: 'gh-client-secret-abc' });
  const tc = await startTestCluster();
  t.after(async () => {
    await tc.close();
    await gh.close();
  });
  const cluster = tc.cluster.url;
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'github-oauth' }, spec: {}, data: { value: 'gh-client-secret-abc' } },
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'github', displayName: 'GitHub' }, spec: { github: { clientID: 'Iv1.test', clientSecret: { fromSecret: 'github-oauth' }, ...gh.spec } } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN', email: 'alice@example.com' } },
    ] as Resource[],
  });
  const sessions = async () => (await tc.api.list('Session', { user: 'alice' })).items.length;
  /** A browser's round trip: /login/github → the stand-in's authorize → /callback with the login cookie. */
  async function loginAs(emails: Array<{ email: string; primary: boolean; verified: boolean }>) {
    gh.ctl.account = { id: 583231, login: 'alice-gh', emails };
    const start = await fetch(`${cluster}/login/github?redirect=%2Fportal`, { redirect: 'manual' });
    assert.equal(start.status, 303);
    const to = new URL(start.headers.get('location')!);
    assert.equal(to.origin + to.pathname, gh.spec.authorizationURL);
    assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(to.searchParams.get('scope'), 'read:user user:email');
    const back = await fetch(to, { redirect: 'manual' });
    const res = await fetch(back.headers.get('location')!, { redirect: 'manual', headers: { cookie: cookieOf(start, 'octelium_login')! } });
    return { res, body: await res.text() };
  }

  // Only a secondary address is verified: the primary one counts, so refused.
  const unverified = await loginAs([{ email: 'alice@example.com', primary: true, verified: false }, { email: 'alice@other.example', primary: false, verified: true }]);
  assert.equal(unverified.res.status, 403);
  assert.match(unverified.body, /alice-gh.*has no verified primary email/);
  // A verified primary address nobody has on this cluster.
  const stranger = await loginAs([{ email: 'mallory@example.com', primary: true, verified: true }]);
  assert.equal(stranger.res.status, 403);
  assert.match(stranger.body, /mallory@example\.com has no account/);
  assert.equal(await sessions(), 0);

  // The good path: a verified primary address (not the first in the list) → alice's browser Session.
  const ok = await loginAs([{ email: 'alice@old.example', primary: false, verified: true }, { email: 'Alice@Example.com', primary: true, verified: true }]);
  assert.equal(ok.res.status, 303, ok.body);
  assert.equal(ok.res.headers.get('location'), '/portal');
  const cookie = cookieOf(ok.res, 'octelium_auth')!;
  assert.ok(cookie);
  const portal = await fetch(`${cluster}/portal`, { headers: { cookie } });
  assert.match(await portal.text(), /Signed in as <strong>alice<\/strong>/);
  const [s] = (await tc.api.list('Session', { user: 'alice' })).items;
  const info = (s.status as { authentication: { info: { identityProvider: { identityProviderRef: { name: string }; identifier: string; email: string } } } }).authentication.info.identityProvider;
  assert.deepEqual([info.identityProviderRef.name, info.identifier, info.email], ['github', '583231', 'Alice@Example.com']);
  assert.ok(gh.ctl.requests.includes('GET /api/user/emails'));

  // A wrong client secret (GitHub answers 200 with an `error`): a clear error page, no Session.
  await tc.api.apply({ resources: [{ apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'github-oauth' }, spec: {}, data: { value: 'wrong-secret' } }] as Resource[] });
  const badSecret = await loginAs([{ email: 'alice@example.com', primary: true, verified: true }]);
  assert.ok(badSecret.res.status >= 400 && badSecret.res.status < 600, String(badSecret.res.status));
  assert.match(badSecret.body, /incorrect_client_credentials|refused/);
  assert.equal(await sessions(), 1);

  const dump = JSON.stringify([await tc.api.list('IdentityProvider'), await tc.api.list('Session'), await tc.api.accessLogs({ limit: 1000 })]);
  assert.doesNotMatch(dump, /gh-client-secret-abc|gho_/);
  assert.doesNotMatch(dump, new RegExp(cookie.split('=')[1]));
});
