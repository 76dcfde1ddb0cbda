import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { Resource } from '@octelium-ts/shared';
import { startTestCluster } from './helpers/testing.js';
import { safeRedirect } from '../src/web/safe-redirect.js';

type Scenario = 'ok' | 'tampered' | 'expired' | 'wrong-aud' | 'wrong-nonce' | 'unverified' | 'wrong-iss' | 'nobody';

/**
 * A **stand-in for a hostile OpenID Provider** (not a real IdP): discovery, JWKS, an authorize endpoint that
 * answers at once, and a token endpoint whose ID token is broken the way the scenario says. The cluster's real
 * relying party (openid-client) must refuse each one.
 */
async function hostileIdp() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const codes = new Map<string, { nonce: string }>();
  const ctl = { scenario: 'ok' as Scenario, issuer: '' };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', ctl.issuer);
    const json = (b: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(b));
    if (u.pathname === '/.well-known/openid-configuration') {
      return json({ issuer: ctl.issuer, authorization_endpoint: `${ctl.issuer}/authorize`, token_endpoint: `${ctl.issuer}/token`, jwks_uri: `${ctl.issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['ES256'] });
    }
    if (u.pathname === '/jwks') return json({ keys: [jwk] });
    if (u.pathname === '/authorize') {
      const code = `c${codes.size}`;
      codes.set(code, { nonce: u.searchParams.get('nonce')! });
      const back = new URL(u.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', u.searchParams.get('state')!);
      return res.writeHead(302, { location: back.href }).end();
    }
    if (u.pathname === '/token') {
      let body = '';
      for await (const c of req) body += c;
      const code = new URLSearchParams(body).get('code')!;
      const { nonce } = codes.get(code)!;
      const s = ctl.scenario;
      const now = Math.floor(Date.now() / 1000);
      const email = s === 'nobody' ? 'mallory@example.com' : 'alice@example.com';
      let idToken = await new SignJWT({ email, email_verified: s !== 'unverified', nonce: s === 'wrong-nonce' ? 'other' : nonce })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(s === 'wrong-iss' ? 'https://evil.example' : ctl.issuer).setSubject('alice-sub')
        .setAudience(s === 'wrong-aud' ? 'someone-else' : 'octelium').setIssuedAt(s === 'expired' ? now - 7200 : now).setExpirationTime(s === 'expired' ? now - 3600 : now + 300)
        .sign(privateKey);
      if (s === 'tampered') {
        const [h, p, sig] = idToken.split('.');
        const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
        idToken = [h, Buffer.from(JSON.stringify({ ...claims, email: 'root@example.com' })).toString('base64url'), sig].join('.');
      }
      return json({ access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  ctl.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { ctl, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const cookieOf = (res: Response, name: string) => res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith(`${name}=`));

test('hostile ID tokens, replayed state, unknown IdP, IdP down, open redirects, cross-site POST: refused, logged, no Session', async (t) => {
  const idp = await hostileIdp();
  const upstream = createServer((req, res) => res.end(`upstream ${req.method}`));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const tc = await startTestCluster();
  t.after(async () => {
    await tc.close();
    await idp.close();
    upstream.close();
  });
  const cluster = tc.cluster.url;
  await tc.api.apply({
    resources: [
      { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'evil-secret' }, spec: {}, data: { value: 's3cr3t-client-secret' } },
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'evil' }, spec: { oidc: { issuerURL: idp.ctl.issuer, clientID: 'octelium', clientSecret: { fromSecret: 'evil-secret' } } } },
      { apiVersion: 'core/v1', kind: 'IdentityProvider', metadata: { name: 'down' }, spec: { oidc: { issuerURL: 'http://127.0.0.1:9', clientID: 'octelium' } } },
      { apiVersion: 'core/v1', kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN', email: 'alice@example.com' } },
      { apiVersion: 'core/v1', kind: 'Service', metadata: { name: 'web' }, spec: { mode: 'HTTP', isPublic: true, config: { upstream: { url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } } } },
    ] as Resource[],
  });
  const sessions = async () => (await tc.api.list('Session', { user: 'alice' })).items.length;

  /** One login through the stand-in: /login/evil → its /authorize → /callback (with the login cookie). */
  async function loginVia(scenario: Scenario, redirect?: string) {
    idp.ctl.scenario = scenario;
    const start = await fetch(`${cluster}/login/evil${redirect ? `?redirect=${encodeURIComponent(redirect)}` : ''}`, { redirect: 'manual' });
    assert.equal(start.status, 303);
    const loginCookie = cookieOf(start, 'octelium_login')!;
    const back = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const callbackURL = back.headers.get('location')!;
    const res = await fetch(callbackURL, { redirect: 'manual', headers: { cookie: loginCookie } });
    return { res, callbackURL, loginCookie, body: await res.text() };
  }

  for (const [scenario, status, text] of [
    ['tampered', 400, /signature/i], ['expired', 400, /TIMESTAMP/], ['wrong-aud', 400, /&quot;aud&quot;/], ['wrong-nonce', 400, /&quot;nonce&quot;/],
    ['wrong-iss', 400, /&quot;iss&quot;/], ['unverified', 403, /not verified/], ['nobody', 403, /mallory@example\.com has no account/],
  ] as const) {
    const r = await loginVia(scenario);
    assert.equal(r.res.status, status, `${scenario}: ${r.body.slice(0, 300)}`);
    assert.match(r.res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(r.body, text, scenario);
    assert.equal(cookieOf(r.res, 'octelium_auth'), undefined, `${scenario}: no cookie`);
    assert.equal(await sessions(), 0, `${scenario}: no Session`);
  }

  // A good login works; its callback replayed (same state) is refused and creates nothing more.
  const ok = await loginVia('ok', '//evil.example/phish');
  assert.equal(ok.res.status, 303);
  assert.equal(ok.res.headers.get('location'), '/portal', 'an open redirect falls back to /portal');
  const auth = cookieOf(ok.res, 'octelium_auth')!;
  assert.match(ok.res.headers.getSetCookie().join('\n'), /octelium_auth=oct_[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+/);
  assert.equal(await sessions(), 1);
  const replay = await fetch(ok.callbackURL, { redirect: 'manual', headers: { cookie: ok.loginCookie } });
  assert.equal(replay.status, 400);
  assert.equal(await sessions(), 1);
  // A callback without the login cookie (started in another browser: login CSRF) is refused.
  const fresh = await fetch(`${cluster}/login/evil`, { redirect: 'manual' });
  const stolen = (await fetch(fresh.headers.get('location')!, { redirect: 'manual' })).headers.get('location')!;
  assert.equal((await fetch(stolen, { redirect: 'manual' })).status, 400);

  // The cookie works for safe requests and same-origin POSTs, never for a cross-site POST; API clients keep 401.
  assert.equal((await fetch(`${cluster}/svc/web/`, { headers: { cookie: auth } })).status, 200);
  assert.equal((await fetch(`${cluster}/svc/web/`, { method: 'POST', headers: { cookie: auth, origin: cluster } })).status, 200);
  const csrf = await fetch(`${cluster}/svc/web/`, { method: 'POST', headers: { cookie: auth, origin: 'http://evil.example' } });
  assert.equal(csrf.status, 403);
  assert.equal(((await csrf.json()) as { error: { code: string } }).error.code, 'OCT_ERR_ORIGIN_NOT_ALLOWED');
  assert.equal((await fetch(`${cluster}/svc/web/`, { method: 'POST', headers: { cookie: auth, 'sec-fetch-site': 'cross-site' } })).status, 403);
  assert.equal((await fetch(`${cluster}/svc/web/`)).status, 401);
  const browserNav = await fetch(`${cluster}/svc/web/a?b=1`, { redirect: 'manual', headers: { accept: 'text/html' } });
  assert.equal(browserNav.status, 302);
  assert.equal(browserNav.headers.get('location'), `${cluster}/login?redirect=%2Fsvc%2Fweb%2Fa%3Fb%3D1`);
  // Logout by a cross-site form is refused; the Session survives.
  assert.equal((await fetch(`${cluster}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: auth, origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' })).status, 403);
  assert.equal(await sessions(), 1);

  // Unknown IdP, hostile names, an IdP that is down (and shows as Failed in `get idp`).
  assert.equal((await fetch(`${cluster}/login/nope`)).status, 404);
  assert.equal((await fetch(`${cluster}/login/%ZZ`)).status, 400);
  assert.equal((await fetch(`${cluster}/login/evil?redirect=a&redirect=b`)).status, 400);
  assert.equal((await fetch(`${cluster}/login?cli=99999999`)).status, 400);
  assert.equal((await fetch(`${cluster}/callback?state=${'x'.repeat(5000)}`)).status, 400);
  const down = await fetch(`${cluster}/login/down`, { redirect: 'manual' });
  assert.equal(down.status, 502);
  assert.match(await down.text(), /unreachable|did not answer/);
  const st = (await tc.api.get('IdentityProvider', 'down')).status as { state: string; message: string };
  assert.equal(st.state, 'Failed');

  // Secrets never in `get` output nor in AccessLogs.
  const dump = JSON.stringify([await tc.api.list('IdentityProvider'), await tc.api.accessLogs({ limit: 1000 })]);
  assert.doesNotMatch(dump, /s3cr3t-client-secret/);
  assert.doesNotMatch(dump, new RegExp(auth.split('=')[1]));
  assert.equal(tc.cluster.faults.counts().size ?? 0, 0);
});

test('safeRedirect: cluster paths and own Service hosts only', () => {
  const c = 'http://localhost:8090';
  assert.equal(safeRedirect('/svc/web/a?b=1#c', c), '/svc/web/a?b=1#c');
  assert.equal(safeRedirect('http://web.localhost:8090/x', c), 'http://web.localhost:8090/x');
  assert.equal(safeRedirect('http://web.prod.localhost:8090/', c), 'http://web.prod.localhost:8090/');
  for (const bad of ['//evil.com', '/\\evil.com', '\\\\evil.com', 'https://evil.com', 'http://localhost.evil.com:8090/', 'http://evil.com#@localhost:8090',
    'javascript:alert(1)', 'http://a.b.c.localhost:8090/', 'http://web.localhost:9999/', 'https://web.localhost:8090/', 'http://u:p@web.localhost:8090/',
    '/\tfoo', '/%0d%0aSet-Cookie', ' //evil.com', 'data:text/html,x', 'x'.repeat(3000)]) {
    const out = safeRedirect(bad, c);
    assert.ok(out === undefined || out.startsWith('/') && !out.startsWith('//'), `${JSON.stringify(bad)} → ${out}`);
  }
  assert.equal(safeRedirect('/%0d%0aSet-Cookie', c), '/%0d%0aSet-Cookie', 'stays percent-encoded, a path');
});
