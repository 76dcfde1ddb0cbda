/**
 * Hostile input to the authorization server (issue 18, found by fuzzing): every case used to end the cluster
 * process (an unhandled rejection) or answer 500. Each request must get its exact status, an OAuth error body
 * (or an error page on the browser-facing authorize endpoint), and leave the cluster answering /healthz.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { startCluster, type Cluster } from '../src/cluster.js';
import { adminClient, service, startDemoMcpServer, startTestCluster, tempDir, user, type TestCluster } from './helpers/testing.js';
import { submitConsent } from './fixtures/mcp/oauth-client.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let tc: TestCluster;
let demo: Demo;
let aliceAuthToken: string;
let endpoint: string;
const redirect = 'http://127.0.0.1:9/cb';
const challenge = 'CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A'; // base64url(sha256('v' * 50))

before(async () => {
  tc = await startTestCluster();
  demo = await startDemoMcpServer({ jsonResponse: true });
  await tc.api.apply({
    resources: [
      user('alice', { type: 'HUMAN', email: 'alice@example.com' }),
      service('mcp-h', { mode: 'MCP', config: { upstream: { url: demo.url } } }),
    ],
  });
  aliceAuthToken = (await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'alice-auth' }, spec: { type: 'AUTH_TOKEN', user: 'alice' } })).token.authenticationToken!;
  endpoint = `${tc.cluster.url}/svc/mcp-h/mcp`;
});
after(async () => {
  await demo.close();
  await tc.close();
});

/** A request that must not hang: before the fix, a rejected handler never answered. */
function send(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${tc.cluster.url}${path}`, { redirect: 'manual', signal: AbortSignal.timeout(5_000), ...init });
}

async function assertHealthy(): Promise<void> {
  const res = await send('/healthz');
  assert.equal(res.status, 200, 'the cluster still answers /healthz');
  await res.body?.cancel();
}

/** Asserts the exact status and OAuth error, then that the cluster is still up. */
async function expectOAuthError(res: Response, status: number, error: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { error: string; error_description: string };
  assert.equal(body.error, error, text);
  assert.equal(typeof body.error_description, 'string');
  await assertHealthy();
  return body.error_description;
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const form = (body: Record<string, string>): RequestInit => ({ method: 'POST', body: new URLSearchParams(body) });
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function registerPublicClient(): Promise<string> {
  const r = await send('/oauth2/register', json({ redirect_uris: [redirect], token_endpoint_auth_method: 'none' }));
  assert.equal(r.status, 201);
  return String(((await r.json()) as { client_id: string }).client_id);
}

function authorizeUrl(clientId: string, extra: Record<string, string> = {}): URL {
  const u = new URL(`${tc.cluster.url}/oauth2/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: 's', resource: endpoint, ...extra })) u.searchParams.set(k, v);
  return u;
}

describe('OAuth: percent-decoding never throws out of a handler', () => {
  test('Basic credentials whose client id or secret is not valid form-urlencoding: 400 invalid_request', async () => {
    for (const [id, secret] of [['%', 'x'], ['a', '%'], ['%ff', 'x'], ['a', '%zz']]) {
      const res = await send('/oauth2/token', { ...form({ grant_type: 'client_credentials' }), headers: { authorization: basic(id, secret) } });
      assert.match(await expectOAuthError(res, 400, 'invalid_request'), /Basic/);
    }
  });

  test('a malformed cookie of some other application does not break the consent form', async () => {
    const clientId = await registerPublicClient();
    const denied = await submitConsent(authorizeUrl(clientId), aliceAuthToken, 'deny', 'a=%; b=%zz; c=%ff');
    assert.equal(denied.status, 303, denied.page);
    assert.equal(denied.location?.searchParams.get('error'), 'access_denied');
    await assertHealthy();
    // The CSRF cookie itself malformed: the check fails cleanly.
    const page = await send(authorizeUrl(clientId).pathname + authorizeUrl(clientId).search);
    const html = await page.text();
    const id = /name="request_id" value="([^"]*)"/.exec(html)![1];
    const csrf = /name="csrf" value="([^"]*)"/.exec(html)![1];
    const res = await send('/oauth2/authorize', { ...form({ request_id: id, csrf, action: 'deny' }), headers: { cookie: 'oct_oauth_csrf=%' } });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    await assertHealthy();
  });

  test('metadata path with bad percent-encoding: 400', async () => {
    // `%zz` is refused by the listener before it reaches us, `%ff` (hex, not UTF-8) by the AS itself.
    for (const bad of ['%zz', '%ff', 'a%e2%82']) {
      const res = await send(`/.well-known/oauth-protected-resource/svc/${bad}/mcp`);
      assert.equal(res.status, 400, bad);
      await res.body?.cancel();
      await assertHealthy();
    }
    assert.equal(await expectOAuthError(await send('/.well-known/oauth-protected-resource/svc/%ff/mcp'), 400, 'invalid_request'), 'the path is not valid percent-encoding');
  });

  test('a resource parameter with bad percent-encoding is invalid_target at the token and authorize endpoints', async () => {
    const { token } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'hostile-oauth' }, spec: { type: 'OAUTH2', user: 'alice' } });
    for (const bad of ['%zz', '%ff', '%']) {
      const resource = `${tc.cluster.url}/svc/${bad}/mcp`;
      const res = await send('/oauth2/token', form({ grant_type: 'client_credentials', client_id: token.clientID!, client_secret: token.clientSecret!, resource }));
      await expectOAuthError(res, 400, 'invalid_target');
    }
    const clientId = await registerPublicClient();
    for (const bad of ['%zz', '%ff']) {
      const res = await send(authorizeUrl(clientId, { resource: `${tc.cluster.url}/svc/${bad}/mcp` }).toString().slice(tc.cluster.url.length));
      assert.equal(res.status, 303);
      assert.equal(new URL(res.headers.get('location')!).searchParams.get('error'), 'invalid_target');
      await assertHealthy();
    }
  });
});

describe('OAuth: every parameter is type-checked before use', () => {
  test('token endpoint: JSON values that are not strings are 400 invalid_request', async () => {
    const bodies: unknown[] = [
      { grant_type: { toString: 1 } },
      { grant_type: ['client_credentials'] },
      { grant_type: 'client_credentials', client_id: ['a', 'b'], client_secret: 'x' },
      { grant_type: 'client_credentials', client_id: 'a', client_secret: null },
      { grant_type: 'authorization_code', code: 'x', code_verifier: 'y', client_id: { toString: 1 } },
      { grant_type: 'refresh_token', refresh_token: 7 },
      { grant_type: 'client_credentials', client_id: 'a', client_secret: 'b', resource: [{}] },
    ];
    for (const body of bodies) assert.match(await expectOAuthError(await send('/oauth2/token', json(body)), 400, 'invalid_request'), /expected/, JSON.stringify(body));
    // Not a JSON object at all.
    for (const raw of ['[1]', '"x"', '{']) {
      await expectOAuthError(await send('/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw }), 400, 'invalid_request');
    }
  });

  test('a form parameter given twice is refused (RFC 6749 §3.1)', async () => {
    const res = await send('/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&grant_type=refresh_token' });
    assert.match(await expectOAuthError(res, 400, 'invalid_request'), /grant_type/);
  });

  test('registration: non-string metadata values are 400 invalid_client_metadata', async () => {
    const bodies: unknown[] = [
      { redirect_uris: [redirect], token_endpoint_auth_method: { toString: 1 } },
      { redirect_uris: [redirect], token_endpoint_auth_method: 'none', client_name: { toString: 1 } },
      { redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: [{}] },
      { redirect_uris: [{ toString: 1 }], token_endpoint_auth_method: 'none' },
      { redirect_uris: redirect, token_endpoint_auth_method: 'none' },
    ];
    for (const body of bodies) await expectOAuthError(await send('/oauth2/register', json(body)), 400, 'invalid_client_metadata');
    await expectOAuthError(await send('/oauth2/register', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' }), 400, 'invalid_client_metadata');
  });

  test('revocation: a non-string token is 400 invalid_request', async () => {
    await expectOAuthError(await send('/oauth2/revoke', json({ token: { toString: 1 } })), 400, 'invalid_request');
  });

  test('authorize: a repeated or non-string parameter gets an error page, never a redirect', async () => {
    const clientId = await registerPublicClient();
    const u = authorizeUrl(clientId);
    u.searchParams.append('redirect_uri', 'http://127.0.0.1:9/other');
    const res = await send(u.pathname + u.search);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    assert.match(await res.text(), /redirect_uri/);
    await assertHealthy();
    const post = await send('/oauth2/authorize', json({ request_id: { toString: 1 }, csrf: 'x' }));
    assert.equal(post.status, 400);
    assert.match(post.headers.get('content-type') ?? '', /text\/html/);
    await post.body?.cancel();
    await assertHealthy();
  });

  test('a body larger than the form limit is 413 invalid_request, not an empty form', async () => {
    const res = await send('/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&x=${'a'.repeat(70 * 1024)}` });
    await expectOAuthError(res, 413, 'invalid_request');
  });
});

describe('OAuth: open Dynamic Client Registration cannot be abused', () => {
  let cluster: Cluster;
  let dataDir: string;
  let authToken: string;
  const TTL_MS = 1_500;

  before(async () => {
    dataDir = tempDir();
    cluster = await startCluster({ dataDir, port: 0, shutdownGraceMs: 500, oauth: { limits: { registrationsPerMinute: 3, unusedClientTtlMs: TTL_MS, pendingPerAddress: 3, maxPending: 8 } } });
    const api = await adminClient(cluster.domain, dataDir);
    await api.apply({ resources: [user('bob', { type: 'HUMAN', email: 'bob@example.com' })] });
    authToken = (await api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'bob-auth' }, spec: { type: 'AUTH_TOKEN', user: 'bob' } })).token.authenticationToken!;
  });
  after(async () => {
    await cluster.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A client at its own loopback source address (127.0.0.0/8 is all loopback), to tell addresses apart. */
  function from(address: string) {
    const call = (path: string, opts: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}) =>
      new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve, reject) => {
        const u = new URL(path, cluster.url);
        const req = httpRequest({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', headers: { host: u.host, ...opts.headers }, localAddress: address, agent: false, timeout: 5_000 }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        });
        req.on('error', reject).on('timeout', () => req.destroy(new Error('timed out')));
        req.end(opts.body);
      });
    return {
      call,
      register: (meta: Record<string, unknown> = { redirect_uris: [redirect], token_endpoint_auth_method: 'none' }) =>
        call('/oauth2/register', { method: 'POST', body: JSON.stringify(meta), headers: { 'content-type': 'application/json' } }),
      /** Opens the consent page; returns what the browser needs to submit it. */
      async openConsent(clientId: string) {
        const u = new URL(`${cluster.url}/oauth2/authorize`);
        for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256' })) u.searchParams.set(k, v);
        const page = await call(u.pathname + u.search);
        assert.equal(page.status, 200, page.text);
        return {
          requestId: /name="request_id" value="([^"]*)"/.exec(page.text)![1], csrf: /name="csrf" value="([^"]*)"/.exec(page.text)![1],
          cookie: String(page.headers['set-cookie']).split(';')[0],
        };
      },
      async submit(c: { requestId: string; csrf: string; cookie: string }) {
        const r = await call('/oauth2/authorize', {
          method: 'POST', body: new URLSearchParams({ request_id: c.requestId, csrf: c.csrf, auth_token: authToken, action: 'allow' }).toString(),
          headers: { cookie: c.cookie, 'content-type': 'application/x-www-form-urlencoded' },
        });
        return { ...r, code: r.headers.location ? new URL(String(r.headers.location)).searchParams.get('code') : null };
      },
    };
  }

  async function healthy(): Promise<void> {
    assert.equal((await fetch(`${cluster.url}/healthz`)).status, 200, 'the cluster still answers /healthz');
  }

  test('registration is rate-limited per source address: 429 with Retry-After, other addresses unaffected', async () => {
    const flood = from('127.0.0.3');
    for (let i = 0; i < 3; i++) assert.equal((await flood.register()).status, 201);
    const limited = await flood.register();
    assert.equal(limited.status, 429, limited.text);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${limited.headers['retry-after']}`);
    const body = JSON.parse(limited.text) as { error: string; error_description: string };
    assert.equal(body.error, 'temporarily_unavailable');
    assert.match(body.error_description, /retry in \d+ s/);
    // Invalid requests count too: the bucket is taken before any work is done.
    assert.equal((await flood.register({ redirect_uris: 'x' })).status, 429);
    assert.equal((await from('127.0.0.4').register()).status, 201);
    await healthy();
  });

  test('stored client metadata is capped (8 KiB by default): 400 invalid_client_metadata past it', async () => {
    const c = from('127.0.0.5');
    const uris = (n: number) => Array.from({ length: n }, (_, i) => `https://app.example.com/${'p'.repeat(400)}/${i}`);
    const big = await c.register({ redirect_uris: uris(20), token_endpoint_auth_method: 'none' });
    assert.equal(big.status, 400, big.text);
    assert.equal((JSON.parse(big.text) as { error: string }).error, 'invalid_client_metadata');
    assert.match(big.text, /at most 8192/);
    assert.equal((await c.register({ redirect_uris: uris(10), token_endpoint_auth_method: 'none' })).status, 201);
    await healthy();
  });

  test("a flood of authorization requests from one address never evicts another address's pending consent", async () => {
    const clientId = (JSON.parse((await from('127.0.0.6').register()).text) as { client_id: string }).client_id;
    const victim = from('127.0.0.7');
    const attacker = from('127.0.0.8');
    const pending = await victim.openConsent(clientId);
    const first = await attacker.openConsent(clientId);
    // Far more than the whole process holds (8 here): a global LRU would have dropped the victim's request.
    for (let i = 0; i < 20; i++) await attacker.openConsent(clientId);
    const ok = await victim.submit(pending);
    assert.equal(ok.status, 303, ok.text);
    assert.ok(ok.code, 'the victim still gets a code');
    // The attacker pushed out only its own oldest requests.
    const evicted = await attacker.submit(first);
    assert.equal(evicted.status, 400);
    assert.match(evicted.text, /unknown or expired/);
    await healthy();
  });

  test('a registration that completes no authorization within the TTL is deleted; a used one stays', async () => {
    const reg = from('127.0.0.9');
    const id = async () => (JSON.parse((await reg.register()).text) as { client_id: string }).client_id;
    const unused = await id();
    const used = await id();
    const consent = await reg.submit(await reg.openConsent(used));
    assert.ok(consent.code);
    const tok = await reg.call('/oauth2/token', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: consent.code!, code_verifier: 'v'.repeat(50), client_id: used, redirect_uri: redirect }).toString(),
    });
    assert.equal(tok.status, 200, tok.text);
    await new Promise((r) => setTimeout(r, TTL_MS + 200));
    assert.equal((await from('127.0.0.10').register()).status, 201, 'a registration sweeps stale ones');
    const gone = await reg.call(`/oauth2/authorize?response_type=code&client_id=${unused}&redirect_uri=${encodeURIComponent(redirect)}&code_challenge=${challenge}&code_challenge_method=S256`);
    assert.equal(gone.status, 400);
    assert.match(gone.text, /Unknown application/);
    await reg.openConsent(used);
    await healthy();
  });

  test('when many addresses fill the process-wide backstop, new requests are refused (503), none evicted', async () => {
    const clientId = (JSON.parse((await from('127.0.0.11').register()).text) as { client_id: string }).client_id;
    const victim = from('127.0.0.12');
    const pending = await victim.openConsent(clientId);
    // 3 per address from 3 more addresses: 1 + 9 > 8.
    let refused = 0;
    for (const a of ['127.0.0.13', '127.0.0.14', '127.0.0.15']) {
      for (let i = 0; i < 3; i++) {
        const u = `/oauth2/authorize?response_type=code&client_id=${clientId}&redirect_uri=${encodeURIComponent(redirect)}&code_challenge=${challenge}&code_challenge_method=S256`;
        const r = await from(a).call(u);
        if (r.status === 503) refused++;
        else assert.equal(r.status, 200);
      }
    }
    assert.ok(refused >= 1, 'the backstop refused the surplus');
    const ok = await victim.submit(pending);
    assert.equal(ok.status, 303, ok.text);
    await healthy();
  });
});
