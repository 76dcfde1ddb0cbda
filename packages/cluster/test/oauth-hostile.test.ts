/**
 * Hostile input to the authorization server (issue 18, found by fuzzing): every case used to end the cluster
 * process (an unhandled rejection) or answer 500. Each request must get its exact status, an OAuth error body
 * (or an error page on the browser-facing authorize endpoint), and leave the cluster answering /healthz.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
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
