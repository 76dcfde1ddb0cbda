import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import type { Resource } from '@octelium-ts/shared';
import { REPO_ROOT, service, startDemoMcpServer, startTestCluster } from './helpers/testing.js';
import { startOidcIdp } from './helpers/oidc-idp.js';
import { launchChromium } from './helpers/chromium.js';
import { MemoryOAuthProvider } from './fixtures/mcp/oauth-client.js';

const ARTIFACTS = process.env.OCTELIUM_TEST_ARTIFACTS ?? join(REPO_ROOT, 'packages/cluster/test/artifacts');

/** The MCP client's redirect URI: a loopback page that records the codes it is sent (what a desktop client runs). */
async function redirectCatcher() {
  const codes: URL[] = [];
  const server = createServer((req, res) => {
    codes.push(new URL(req.url ?? '/', 'http://127.0.0.1'));
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>You can close this window.</p>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cb`, codes, close: () => server.close() };
}

/**
 * Issue 13 item 5, end to end with real parts only: a stock MCP SDK client (OAuthClientProvider, DCR + PKCE), a
 * real browser (Chromium) on the consent page, a real OpenID Provider (oidc-provider) behind "Continue with …".
 * Two people get two MCP sessions, and the Service's policies apply to each of them by name.
 */
test('a HUMAN user connects a stock MCP client by signing in through their IdP on the consent page; policies apply per person', { timeout: 90_000 }, async (t) => {
  const browser = await launchChromium(t);
  if (!browser) return;
  const demo = await startDemoMcpServer({ jsonResponse: true });
  const tc = await startTestCluster();
  const cluster = tc.cluster.url;
  const idp = await startOidcIdp({ clientId: 'octelium', clientSecret: 'idp-client-secret-456', redirectUris: [`${cluster}/callback`] });
  const catcher = await redirectCatcher();
  t.after(async () => {
    await browser.close();
    await idp.close();
    await tc.close();
    await demo.close();
    catcher.close();
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  const bobMayOnlySubtract = '!has(ctx.request.http.bodyMap.method) || ctx.request.http.bodyMap.method != "tools/call" || ctx.request.http.bodyMap.params.name == "subtract"';
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'corp-oidc' }, spec: {}, data: { value: 'idp-client-secret-456' } },
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'corp', displayName: 'Corp SSO' }, spec: { oidc: { issuerURL: idp.issuer, clientID: 'octelium', clientSecret: { fromSecret: 'corp-oidc' } } } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN', email: 'alice@example.com' } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'bob' }, spec: { type: 'HUMAN', email: 'bob@example.com' } },
      service('calc', {
        mode: 'MCP', config: { upstream: { url: demo.url } },
        authorization: { inlinePolicies: [{ spec: { rules: [
          { name: 'alice-all', effect: 'ALLOW', condition: { match: 'ctx.user.metadata.name == "alice"' } },
          { name: 'bob-subtract', effect: 'ALLOW', condition: { all: { of: [{ match: 'ctx.user.metadata.name == "bob"' }, { match: bobMayOnlySubtract }] } } },
        ] } }] },
      }),
    ] as Resource[],
  });
  const endpoint = `${cluster}/svc/calc/mcp`;

  /** What a person does: the SDK opens the authorization URL, they sign in at their IdP, they click Allow. */
  async function connectAs(b: Browser, email: string, screenshot?: string) {
    const provider = new MemoryOAuthProvider(catcher.url, `desktop-agent-${email}`);
    const first = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
    await assert.rejects(new Client({ name: 'agent', version: '1.0.0' }).connect(first), UnauthorizedError);
    assert.ok(provider.authorizationUrl);
    const context = await b.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(provider.authorizationUrl.href);
    // Not signed in: the consent page offers the IdP, and no token box is in sight (it is folded away).
    assert.equal(await page.getByLabel(/auth token/).isVisible(), false);
    await page.getByRole('link', { name: 'Continue with Corp SSO' }).click();
    await page.waitForURL((u) => u.href.startsWith(idp.issuer));
    await page.fill('input[name=login]', email);
    await page.fill('input[name=password]', 'any');
    await page.click('button[type=submit]');
    // Back on the same consent request, now as the signed-in person.
    await page.waitForURL((u) => u.pathname === '/oauth2/authorize' && u.searchParams.has('request_id'));
    assert.match((await page.textContent('.who')) ?? '', new RegExp(`Signed in as ${email.split('@')[0]} \\(${email.replace('.', '\\.')}\\) through Corp SSO`));
    if (screenshot) await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
    const before = catcher.codes.length;
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(catcher.url));
    const back = catcher.codes[before];
    assert.equal(back.searchParams.get('iss'), cluster);
    await first.finishAuth(back.searchParams.get('code')!);
    const client = new Client({ name: 'agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider }));
    return { client, provider, context, page };
  }

  const alice = await connectAs(browser, 'alice@example.com', 'consent-signed-in.png');
  assert.deepEqual((await alice.client.listTools()).tools.map((x) => x.name).sort(), ['add', 'subtract']);
  assert.equal(((await alice.client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })) as { content: Array<{ text: string }> }).content[0].text, '5');

  const bob = await connectAs(browser, 'bob@example.com');
  assert.deepEqual((await bob.client.listTools()).tools.map((x) => x.name), ['subtract']);
  const denied = (await bob.client.callTool({ name: 'add', arguments: { a: 2, b: 3 } }).catch((e: Error) => e)) as Error | { isError?: boolean };
  assert.ok(denied instanceof Error ? /Unknown tool/.test(denied.message) : denied.isError, 'bob may not call add');
  assert.equal(((await bob.client.callTool({ name: 'subtract', arguments: { a: 5, b: 3 } })) as { content: Array<{ text: string }> }).content[0].text, '2');

  // Each grant is a Session of its person, made through the IdP (no Credential behind it).
  const grants = (await tc.api.list('Session')).items.filter((s) => (s.status as { oauth2?: unknown }).oauth2);
  assert.deepEqual(grants.map((s) => (s.status as { userRef: { name: string } }).userRef.name).sort(), ['alice', 'bob']);
  for (const s of grants) {
    const st = s.status as { type: string; credentialRef?: unknown; authentication: { info: { identityProvider: { identityProviderRef: { name: string } } } } };
    assert.equal(st.type, 'CLIENTLESS');
    assert.equal(st.credentialRef, undefined);
    assert.equal(st.authentication.info.identityProvider.identityProviderRef.name, 'corp');
  }
  // The AccessLogs name the person behind each MCP call.
  const logs = (await tc.api.accessLogs({ limit: 500 })).items.filter((l) => l.metadata.targetRef?.name === 'calc');
  assert.ok(logs.some((l) => l.metadata.actorRef?.name === 'alice' && l.entry.common.status === 'ALLOWED'));
  assert.ok(logs.some((l) => l.metadata.actorRef?.name === 'bob'));

  // Hostile consent submissions with alice's browser cookie: no code, no Session.
  const cookie = (await alice.context.cookies(cluster)).filter((c) => c.name === 'octelium_auth').map((c) => `${c.name}=${c.value}`)[0];
  assert.ok(cookie);
  const provider = new MemoryOAuthProvider(catcher.url, 'hostile');
  const probe = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
  await assert.rejects(new Client({ name: 'h', version: '1' }).connect(probe), UnauthorizedError);
  const open = await fetch(provider.authorizationUrl!, { headers: { cookie } });
  const html = await open.text();
  assert.match(html, /Signed in as <strong>alice<\/strong>/);
  const field = (n: string) => new RegExp(`name="${n}" value="([^"]*)"`).exec(html)![1];
  const csrfCookie = open.headers.getSetCookie()[0].split(';')[0];
  const post = (body: Record<string, string>, headers: Record<string, string> = {}) => fetch(`${cluster}/oauth2/authorize`, {
    method: 'POST', redirect: 'manual', body: new URLSearchParams({ request_id: field('request_id'), csrf: field('csrf'), action: 'allow', ...body }),
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${cookie}; ${csrfCookie}`, origin: cluster, ...headers },
  });
  const sessionsBefore = (await tc.api.list('Session')).items.length;
  assert.equal((await post({ session: 'bob-00000000' })).status, 401, 'a Session name other than the cookie\'s');
  assert.equal((await post({ session: field('session') }, { origin: 'http://evil.example' })).status, 403, 'cross-site');
  const noCookie = await fetch(`${cluster}/oauth2/authorize`, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ request_id: field('request_id'), csrf: field('csrf'), action: 'allow', session: field('session') }), headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie } });
  assert.equal(noCookie.status, 401);
  assert.match(await noCookie.text(), /sign-in changed or ended/);
  const repeated = await fetch(`${cluster}/oauth2/authorize`, { method: 'POST', redirect: 'manual', body: `request_id=${encodeURIComponent(field('request_id'))}&csrf=${encodeURIComponent(field('csrf'))}&action=allow&session=a&session=b`, headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${cookie}; ${csrfCookie}`, origin: cluster } });
  assert.equal(repeated.status, 400, 'a repeated parameter');
  assert.equal((await fetch(`${cluster}/oauth2/authorize?request_id=unknown`)).status, 400);
  assert.equal((await fetch(`${cluster}/oauth2/authorize?request_id=a&request_id=b`)).status, 400);
  assert.equal((await tc.api.list('Session')).items.length, sessionsBefore, 'nothing created');
  // The real one still works: a code for alice.
  const ok = await post({ session: field('session') });
  assert.equal(ok.status, 303);
  assert.ok(new URL(ok.headers.get('location')!).searchParams.get('code'));

  // Signing out of the browser leaves the MCP grant (its own Session, revocable in the portal) in place.
  await alice.page.goto(`${cluster}/portal`);
  assert.match((await alice.page.textContent('body')) ?? '', /MCP client mcp_/);
  await alice.client.close();
  await bob.client.close();
  const dump = JSON.stringify([await tc.api.list('Session'), await tc.api.accessLogs({ limit: 1000 })]);
  assert.doesNotMatch(dump, new RegExp(cookie.split('=')[1]));
  assert.doesNotMatch(dump, /idp-client-secret-456/);
  assert.equal(tc.cluster.faults.counts().size ?? 0, 0);
});
