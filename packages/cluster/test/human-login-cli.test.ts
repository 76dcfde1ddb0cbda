import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '@octelium-ts/shared';
import { runBin, startBin, startTestCluster, tempDir } from './helpers/testing.js';
import { startOidcIdp } from './helpers/oidc-idp.js';
import { launchChromium } from './helpers/chromium.js';
import { startAssertionIssuer } from './helpers/assertion-issuer.js';

/**
 * `octelium login` without a token (issue 13 item 6), through the compiled CLI: it prints the /login URL and asks
 * the desktop to open it (a stand-in `xdg-open` on PATH records the URL), Chromium signs in at a real OIDC
 * provider, the browser lands on the CLI's loopback callback, and the stored Session makes `octeliumctl` work for
 * a HUMAN admin. Then `octelium login --assertion` for a workload, and the hostile side of `/login/token`.
 */
test('octelium login in a browser (HUMAN admin) and with --assertion (WORKLOAD); octeliumctl uses the stored Session', { timeout: 90_000 }, async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  const tc = await startTestCluster();
  const cluster = tc.cluster.url;
  const domain = tc.cluster.domain;
  const idp = await startOidcIdp({ clientId: 'octelium', clientSecret: 'idp-client-secret-789', redirectUris: [`${cluster}/callback`] });
  const ci = await startAssertionIssuer();
  t.after(async () => {
    await browser.close();
    await idp.close();
    await ci.close();
    await tc.close();
  });
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'corp-oidc' }, spec: {}, data: { value: 'idp-client-secret-789' } },
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'corp', displayName: 'Corp SSO' }, spec: { oidc: { issuerURL: idp.issuer, clientID: 'octelium', clientSecret: { fromSecret: 'corp-oidc' } } } },
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'ci' }, spec: { oidcIdentityToken: { jwksURL: ci.jwksURL, issuer: ci.issuer, audience: 'octelium-test' } } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN', email: 'alice@example.com', groups: ['octelium-admins'] } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'ci-bot' }, spec: { type: 'WORKLOAD', authentication: { identities: [{ identityProvider: 'ci', identifier: 'repo:org/app:ref:refs/heads/main' }] } } },
    ] as Resource[],
  });

  // A desktop whose "browser opener" records what it was asked to open.
  const home = tempDir('octelium-home-');
  const bin = join(home, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > "${join(home, 'opened-url')}"\n`);
  chmodSync(join(bin, 'xdg-open'), 0o755);
  const env = { HOME: home, PATH: `${bin}:${process.env.PATH}`, OCTELIUM_DOMAIN: '', OCTELIUM_AUTH_TOKEN: '', OCTELIUM_ACCESS_TOKEN: '' };

  const login = startBin('octelium', ['login', '--domain', domain], env);
  const printed = (await login.waitFor(/open this URL in a browser:\s+(\S+)/))[1];
  assert.match(printed, new RegExp(`^${cluster.replace(/[.]/g, '\\.')}/login\\?cli=\\d+&cli_challenge=[A-Za-z0-9_-]{43}$`));
  for (let i = 0; i < 100 && !existsSync(join(home, 'opened-url')); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(readFileSync(join(home, 'opened-url'), 'utf8'), printed, 'the CLI asked the desktop to open the same URL');

  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(printed);
  assert.match((await page.textContent('main')) ?? '', /signing in the octelium command line tool/);
  await page.getByRole('link', { name: /Continue with Corp SSO/ }).click();
  await page.waitForURL((u) => u.href.startsWith(idp.issuer));
  await page.fill('input[name=login]', 'alice@example.com');
  await page.fill('input[name=password]', 'any');
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.hostname === '127.0.0.1' && u.pathname === '/callback');
  assert.match((await page.textContent('body')) ?? '', /Signed in/);
  const t0 = Date.now();
  const code = await new Promise<number | null>((r) => (login.proc.exitCode !== null ? r(login.proc.exitCode) : login.proc.once('exit', (c) => r(c))));
  console.log(`octelium login exited ${Date.now() - t0} ms after the browser's callback`);
  assert.equal(code, 0, login.output());
  assert.match(login.output(), new RegExp(`Logged in to ${domain} as alice \\(session alice-[0-9a-f]+, expires`));

  // The Session is stored 0600 and octeliumctl works with it (alice is a HUMAN admin).
  const stored = join(home, '.config/octelium', `session-${domain.replace(/[^a-zA-Z0-9.-]/g, '_')}.json`);
  assert.equal(statSync(stored).mode & 0o777, 0o600);
  const state = JSON.parse(readFileSync(stored, 'utf8')) as { user: string; session: string; accessToken: string };
  assert.equal(state.user, 'alice');
  const got = await runBin('octeliumctl', ['get', 'idp', '--domain', domain], { env });
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /corp\s+oidc\s+Corp SSO\s+Ready/);
  const session = await tc.api.get('Session', state.session);
  const sst = session.status as { type: string; isBrowser: boolean; authentication: { info: { identityProvider: { identityProviderRef: { name: string } } } } };
  assert.deepEqual([sst.type, sst.isBrowser, sst.authentication.info.identityProvider.identityProviderRef.name], ['CLIENT', false, 'corp']);

  // --assertion: a workload's OIDC token becomes its stored Session.
  const home2 = tempDir('octelium-home-');
  const env2 = { ...env, HOME: home2 };
  const jwt = await ci.sign({ sub: 'repo:org/app:ref:refs/heads/main', aud: 'octelium-test', jti: 'job-42' });
  const a = await runBin('octelium', ['login', '--domain', domain, '--assertion', jwt], { env: env2 });
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, new RegExp(`Logged in to ${domain} as ci-bot`));
  const again = await runBin('octelium', ['login', '--domain', domain, '--assertion', jwt], { env: env2 });
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /refused the assertion: invalid_grant: this assertion was already used/);
  const both = await runBin('octelium', ['login', '--domain', domain, '--assertion', jwt, '--auth-token', 'x'], { env: env2 });
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /either --auth-token or --assertion/);

  // /login/token and /login?cli=… refuse what a hostile local process or page could send; nothing is created.
  const before = (await tc.api.list('Session')).items.length;
  const redeem = (body: string) => fetch(`${cluster}/login/token`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  for (const body of ['code=nope&code_verifier=' + 'v'.repeat(43), '', 'code=a&code=b', 'code=x&code_verifier=short', `code=${'x'.repeat(5000)}`]) {
    const res = await redeem(body);
    assert.ok(res.status === 400 || res.status === 401, `${body.slice(0, 40)} → ${res.status}`);
    assert.match(res.headers.get('content-type') ?? '', /json/);
  }
  assert.equal((await fetch(`${cluster}/login?cli=80&cli_challenge=${'a'.repeat(43)}`)).status, 400, 'a privileged port');
  assert.equal((await fetch(`${cluster}/login?cli=5000&cli_challenge=bad`)).status, 400);
  assert.equal((await fetch(`${cluster}/login/token`)).status, 405);
  assert.equal((await tc.api.list('Session')).items.length, before);
  const dump = JSON.stringify(await tc.api.accessLogs({ limit: 1000 }));
  assert.doesNotMatch(dump, new RegExp(state.accessToken));
  assert.doesNotMatch(dump, new RegExp(jwt.split('.')[2]));
});
