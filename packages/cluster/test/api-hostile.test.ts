/**
 * The control-plane API under hostile input (issue 18): malformed names, non-string fields and bad query values
 * are a 400 OCT_ERR_INVALID_ARGUMENT naming the problem, never a 500; and tokens stay inside their boundary —
 * an OAuth token minted for an MCP client or a Service audience is refused at /api/v1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { submitConsent } from './fixtures/mcp/oauth-client.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let tc: TestCluster;
let demo: Demo;

before(async () => {
  tc = await startTestCluster();
  demo = await startDemoMcpServer({ jsonResponse: true });
});
after(async () => {
  await demo.close();
  await tc.close();
});

function send(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const { token = tc.adminToken, headers, ...rest } = init;
  return fetch(`${tc.cluster.url}${path}`, {
    signal: AbortSignal.timeout(5_000), ...rest,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(rest.body ? { 'content-type': 'application/json' } : {}), ...(headers as Record<string, string>) },
  });
}

async function assertHealthy(): Promise<void> {
  const res = await fetch(`${tc.cluster.url}/healthz`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200, 'the cluster still answers /healthz');
  await res.body?.cancel();
}

/** Exact status and error code, a message without "[object Object]", then /healthz. Returns the message. */
async function expectError(res: Response, status: number, code: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code, text);
  assert.doesNotMatch(body.error.message, /\[object /i, 'the message names the problem, not a stringified object');
  await assertHealthy();
  return body.error.message;
}

const post = (path: string, body: unknown, init: { token?: string } = {}) => send(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), ...init });

describe('API: hostile input is a 400 OCT_ERR_INVALID_ARGUMENT', () => {
  test('a resource name that is not valid percent-encoding', async () => {
    // `%ff` is hex but not UTF-8: it passes the listener's request-target check and reaches the API's decoding.
    for (const method of ['GET', 'DELETE', 'PUT']) {
      const msg = await expectError(await send('/api/v1/services/%ff', { method, ...(method === 'PUT' ? { body: '{}' } : {}) }), 400, 'OCT_ERR_INVALID_ARGUMENT');
      assert.match(msg, /resource name/);
    }
    // `%zz` is already refused by the listener (its own 400 code).
    const res = await send('/api/v1/services/%zz');
    assert.equal(res.status, 400);
    await res.body?.cancel();
    await assertHealthy();
  });

  test('login: authToken that is not a string', async () => {
    for (const body of [{ authToken: {} }, { authToken: ['x'] }, { authToken: 1 }, [], 'null']) {
      assert.match(await expectError(await post('/api/v1/login', body, { token: '' }), 400, 'OCT_ERR_INVALID_ARGUMENT'), /authToken|expected/);
    }
  });

  test('access logs: limit must be a whole number from 1 to 10000', async () => {
    for (const limit of ['abc', '-1', '0', '1e9', '1.5', '10001', '']) {
      assert.match(await expectError(await send(`/api/v1/accesslogs?limit=${limit}`), 400, 'OCT_ERR_INVALID_ARGUMENT'), /limit/, limit);
    }
    const ok = await send('/api/v1/accesslogs?limit=10000');
    assert.equal(ok.status, 200);
    assert.ok(Array.isArray(((await ok.json()) as { items: unknown[] }).items));
  });

  test('a filter given twice is refused, not silently narrowed to one value', async () => {
    for (const path of ['/api/v1/accesslogs?user=a&user=b', '/api/v1/accesslogs?service=a&service=b', '/api/v1/credentials?user=a&user=b', '/api/v1/services?namespace=a&namespace=b', '/api/v1/accesslogs?follow=yes']) {
      await expectError(await send(path), 400, 'OCT_ERR_INVALID_ARGUMENT');
    }
  });

  test('apply: the request envelope is type-checked', async () => {
    const bodies: unknown[] = [
      { resources: {} },
      { resources: [], prune: true, pruneKinds: {} },
      { resources: [], prune: true, pruneKinds: 'User' },
      { resources: [], prune: true, pruneKinds: [{}] },
      { resources: [], dryRun: 'yes' },
      { resources: [], prune: 1 },
      [],
      'null',
    ];
    for (const body of bodies) await expectError(await post('/api/v1/apply', body), 400, 'OCT_ERR_INVALID_ARGUMENT');
    // A string dryRun used to be truthy: nothing may have been applied by the attempts above.
    assert.equal((await tc.api.list('User')).items.some((u) => u.metadata.name === 'never'), false);
  });

  test('apply: each bad resource is named by its index, with a readable label', async () => {
    const msg = await expectError(await post('/api/v1/apply', { resources: [null, 1, 'x', { kind: 'User', metadata: { name: {} }, spec: { type: 'WORKLOAD' } }, { kind: {}, metadata: { name: 'x' } }] }), 400, 'OCT_ERR_INVALID_ARGUMENT');
    for (const i of [0, 1, 2, 3, 4]) assert.match(msg, new RegExp(`resources\\[${i}\\]`));
    assert.match(msg, /resources\[3\] user\/\?: metadata\.name: expected string, got object/);
  });

  test('create/replace: a body that is not a JSON object, or with an object as metadata.name', async () => {
    for (const body of ['"str"', '[1]', 'null', '7']) {
      assert.match(await expectError(await post('/api/v1/users', body), 400, 'OCT_ERR_INVALID_ARGUMENT'), /JSON object/);
      await expectError(await send('/api/v1/users/x', { method: 'PUT', body }), 400, 'OCT_ERR_INVALID_ARGUMENT');
    }
    assert.match(await expectError(await post('/api/v1/users', { kind: 'User', metadata: { name: {} }, spec: { type: 'WORKLOAD' } }), 400, 'OCT_ERR_INVALID_ARGUMENT'), /user\/\?: metadata\.name/);
  });
});

describe('API: tokens stay inside their boundary', () => {
  const redirect = 'http://127.0.0.1:9/cb';
  const verifier = 'v'.repeat(50);
  const challenge = 'CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A'; // base64url(sha256('v' * 50))
  let endpoint: string;
  let adaAuthToken: string;

  before(async () => {
    await tc.api.apply({
      resources: [
        user('ada', { type: 'HUMAN', email: 'ada@example.com', groups: ['octelium-admins'] }),
        user('ops', { groups: ['octelium-admins'] }),
        service('mcp-admin', { mode: 'MCP', config: { upstream: { url: demo.url } } }),
      ],
    });
    adaAuthToken = (await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'ada-auth' }, spec: { type: 'AUTH_TOKEN', user: 'ada' } })).token.authenticationToken!;
    endpoint = `${tc.cluster.url}/svc/mcp-admin/mcp`;
  });

  /** An admin completes the MCP authorization flow (DCR → consent → code → tokens), as an MCP client drives it. */
  async function mcpGrant(resource: string | undefined): Promise<{ access_token: string; refresh_token: string; client_id: string }> {
    const reg = await fetch(`${tc.cluster.url}/oauth2/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] }),
    });
    const clientId = String(((await reg.json()) as { client_id: string }).client_id);
    const u = new URL(`${tc.cluster.url}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', ...(resource ? { resource } : {}) })) u.searchParams.set(k, v);
    const consent = await submitConsent(u, adaAuthToken);
    assert.equal(consent.status, 303, consent.page);
    const code = consent.location!.searchParams.get('code')!;
    const tok = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: redirect, ...(resource ? { resource } : {}) }) });
    assert.equal(tok.status, 200);
    return { ...((await tok.json()) as { access_token: string; refresh_token: string }), client_id: clientId };
  }

  async function apiStatus(token: string): Promise<{ status: number; challenge: string | null; message: string }> {
    const res = await send('/api/v1/services', { token });
    const body = (await res.json()) as { error?: { message: string } };
    return { status: res.status, challenge: res.headers.get('www-authenticate'), message: body.error?.message ?? '' };
  }

  async function serviceStatus(token: string): Promise<number> {
    const res = await fetch(endpoint, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    await res.body?.cancel();
    return res.status;
  }

  test("an admin's MCP authorization-code token works at its Service and gets 401 at /api/v1", async () => {
    const t = await mcpGrant(endpoint);
    assert.equal(decodeJwt(t.access_token).aud, endpoint);
    assert.equal(await serviceStatus(t.access_token), 200);
    const api = await apiStatus(t.access_token);
    assert.equal(api.status, 401);
    assert.equal(api.challenge, 'Bearer error="invalid_token"');
    assert.match(api.message, /OAuth client .*not valid for the control-plane API/);
    assert.equal((await send('/api/v1/whoami', { token: t.access_token })).status, 401);
    // A refreshed token of the same grant is refused too.
    const r = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: t.client_id }) });
    assert.equal(r.status, 200);
    assert.equal((await apiStatus(((await r.json()) as { access_token: string }).access_token)).status, 401);
    await assertHealthy();
  });

  test('an authorization-code token minted without a resource (no aud) is refused at /api/v1 as well', async () => {
    const t = await mcpGrant(undefined);
    assert.equal(decodeJwt(t.access_token).aud, undefined);
    assert.equal((await apiStatus(t.access_token)).status, 401);
  });

  test('client_credentials: bound to a Service audience → refused; without resource → accepted as before', async () => {
    const { token } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'ops-oauth' }, spec: { type: 'OAUTH2', user: 'ops' } });
    const mint = async (extra: Record<string, string>) => {
      const r = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: token.clientID!, client_secret: token.clientSecret!, ...extra }) });
      return ((await r.json()) as { access_token: string }).access_token;
    };
    const bound = await apiStatus(await mint({ resource: endpoint }));
    assert.equal(bound.status, 401);
    assert.match(bound.message, /audience-bound/);
    assert.equal((await apiStatus(await mint({}))).status, 200);
  });

  test('login Sessions and access-token Credentials keep working at /api/v1', async () => {
    assert.equal((await apiStatus(tc.adminToken)).status, 200);
    const { token } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'ops-access' }, spec: { type: 'ACCESS_TOKEN', user: 'ops' } });
    assert.equal((await apiStatus(token.accessToken!)).status, 200);
  });
});
