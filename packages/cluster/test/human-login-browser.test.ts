import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '@octelium-ts/shared';
import { startTestCluster, REPO_ROOT } from './helpers/testing.js';
import { startOidcIdp } from './helpers/oidc-idp.js';
import { launchChromium } from './helpers/chromium.js';

/** Screenshots of each run (test artifacts); docs/img/ holds the committed copies. */
const ARTIFACTS = process.env.OCTELIUM_TEST_ARTIFACTS ?? join(REPO_ROOT, 'packages/cluster/test/artifacts');

const res = (kind: string, name: string, spec: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ apiVersion: 'core/v1', kind, metadata: { name, ...(extra.metadata as object ?? {}) }, spec, ...(extra.data ? { data: extra.data } : {}) }) as Resource;

/**
 * End to end with a real IdP (oidc-provider) and a real browser (Debian's Chromium): open a Service → /login →
 * the IdP's form → back with the cookie → the Service answers; /portal lists exactly the allowed Services;
 * sign out ends access.
 */
test('browser login through a real OIDC provider, clientless access, portal and logout', { timeout: 60_000 }, async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  const upstream = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`<h1>hello from web</h1><p>${req.method} ${req.url} cookie=${req.headers.cookie ?? 'none'}</p>`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const tc = await startTestCluster();
  const cluster = tc.cluster.url;
  const idp = await startOidcIdp({ clientId: 'octelium', clientSecret: 'idp-client-secret-123', redirectUris: [`${cluster}/callback`] });
  t.after(async () => {
    await browser.close();
    await idp.close();
    await tc.close();
    upstream.close();
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  await tc.api.apply({
    resources: [
      res('Secret', 'corp-oidc', {}, { data: { value: 'idp-client-secret-123' } }),
      { ...res('IdentityProvider', 'corp', { oidc: { issuerURL: idp.issuer, clientID: 'octelium', clientSecret: { fromSecret: 'corp-oidc' } } }), metadata: { name: 'corp', displayName: 'Corp SSO' } },
      res('User', 'alice', { type: 'HUMAN', email: 'alice@example.com' }),
      res('Service', 'web', { mode: 'HTTP', isPublic: true, config: { upstream: { url: upstreamURL } } }),
      res('Service', 'wiki', { mode: 'HTTP', isPublic: true, config: { upstream: { url: upstreamURL } } }),
      // Only bob may reach payroll; a private Service is never reachable from a browser Session.
      res('Service', 'payroll', { mode: 'HTTP', isPublic: true, config: { upstream: { url: upstreamURL } }, authorization: { inlinePolicies: [{ spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.user.metadata.name == "bob"' } }] } }] } }),
      res('Service', 'internal', { mode: 'HTTP', isPublic: false, config: { upstream: { url: upstreamURL } } }),
    ],
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  // 1. A Service without a credential → the cluster's login page.
  await page.goto(`${cluster}/svc/web/hello?x=1`);
  assert.match(page.url(), /\/login\?redirect=%2Fsvc%2Fweb%2Fhello%3Fx%3D1$/);
  await page.screenshot({ path: join(ARTIFACTS, 'login.png') });
  // 2. Click the IdP, log in at the IdP's own form.
  await page.getByRole('link', { name: /Continue with Corp SSO/ }).click();
  await page.waitForURL((u) => u.href.startsWith(idp.issuer));
  await page.fill('input[name=login]', 'alice@example.com');
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  // 3. Back with the cookie, at the Service, which answers (the cookie itself is not forwarded upstream).
  await page.waitForURL(`${cluster}/svc/web/hello?x=1`);
  const body = await page.textContent('body');
  assert.match(body ?? '', /hello from web/);
  assert.match(body ?? '', /GET \/hello\?x=1 cookie=none/);
  const cookies = await page.context().cookies(cluster);
  const auth = cookies.find((c) => c.name === 'octelium_auth');
  assert.ok(auth?.httpOnly, 'octelium_auth is HttpOnly');
  assert.equal(auth?.sameSite, 'Lax');
  // 4. The portal lists exactly the Services alice may reach.
  await page.goto(`${cluster}/portal`);
  await page.screenshot({ path: join(ARTIFACTS, 'portal.png'), fullPage: true });
  const listed = await page.$$eval('table:first-of-type tbody td strong', (els) => els.map((e) => e.textContent));
  assert.deepEqual(listed, ['web', 'wiki']);
  assert.equal(await page.getByText('this browser').count(), 1);
  // The Session is a HUMAN browser Session created through the IdP.
  const sessions = (await tc.api.list('Session', { user: 'alice' })).items;
  assert.equal(sessions.length, 1);
  const st = sessions[0].status as { type: string; isBrowser: boolean; authentication: { info: { identityProvider: { identityProviderRef: { name: string }; email: string } } } };
  assert.equal(st.type, 'CLIENTLESS');
  assert.equal(st.isBrowser, true);
  assert.equal(st.authentication.info.identityProvider.identityProviderRef.name, 'corp');
  // Denied and private Services stay closed even with the cookie.
  assert.equal((await page.goto(`${cluster}/svc/payroll/`))?.status(), 403);
  assert.equal((await page.goto(`${cluster}/svc/internal/`))?.status(), 403);
  // 5. Sign out ends access: the Session is gone and the Service sends the browser to /login again.
  await page.goto(`${cluster}/portal`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${cluster}/login`);
  assert.equal((await tc.api.list('Session', { user: 'alice' })).items.length, 0);
  await page.goto(`${cluster}/svc/web/`);
  assert.match(page.url(), /\/login\?redirect=/);
  // The IdP is Ready in `get idp`.
  const got = await tc.api.get('IdentityProvider', 'corp');
  assert.equal((got.status as { state: string }).state, 'Ready');
  assert.doesNotMatch(JSON.stringify(got), /idp-client-secret-123/);
});
