import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { decodeJwt } from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { startCluster, type Cluster } from '../src/cluster.js';
import { isAllowedAddress } from '../src/net/ssrf.js';
import { service, startDemoMcpServer, startTestCluster, tempDir, user, type TestCluster } from './helpers/testing.js';
import { MemoryOAuthProvider, submitConsent } from './fixtures/mcp/oauth-client.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let tc: TestCluster;
let demo: Demo;
const upstreamAuth: Array<string | undefined> = [];
let aliceAuthToken: string;
let robotAuthToken: string;
let endpointA: string, endpointB: string;

before(async () => {
  tc = await startTestCluster();
  demo = await startDemoMcpServer({ jsonResponse: true, onRequest: (r) => upstreamAuth.push(r.headers.authorization) });
  await tc.api.apply({
    resources: [
      user('alice', { type: 'HUMAN', email: 'alice@example.com' }),
      user('robot'),
      service('mcp-a', { mode: 'MCP', config: { upstream: { url: demo.url } } }),
      service('mcp-b', { mode: 'MCP', config: { upstream: { url: demo.url } }, mcp: { scopes: ['mcp', 'tools:read'] } }),
      service('plain', { config: { upstream: { url: demo.url } } }),
    ],
  });
  const cred = (name: string, u: string) => tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name }, spec: { type: 'AUTH_TOKEN', user: u } });
  aliceAuthToken = (await cred('alice-auth', 'alice')).token.authenticationToken!;
  robotAuthToken = (await cred('robot-auth', 'robot')).token.authenticationToken!;
  endpointA = `${tc.cluster.url}/svc/mcp-a/mcp`;
  endpointB = `${tc.cluster.url}/svc/mcp-b/mcp`;
});
after(async () => {
  await demo.close();
  await tc.close();
});

/** Full SDK flow from nothing but the URL: 401 → PRM → AS metadata → DCR → consent (PKCE) → token → reconnect. */
async function sdkLogin(endpoint: string, provider = new MemoryOAuthProvider()): Promise<{ client: Client; provider: MemoryOAuthProvider }> {
  const first = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
  await assert.rejects(new Client({ name: 'mcp-oauth-test', version: '1.0.0' }).connect(first), UnauthorizedError);
  assert.ok(provider.authorizationUrl, 'the SDK asked to open the authorization URL');
  const consent = await submitConsent(provider.authorizationUrl, aliceAuthToken);
  assert.equal(consent.status, 303, consent.page);
  const code = consent.location!.searchParams.get('code');
  assert.ok(code, `redirect carries a code: ${consent.location}`);
  await first.finishAuth(code);
  const client = new Client({ name: 'mcp-oauth-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider }));
  return { client, provider };
}

describe('MCP authorization: discovery', () => {
  test('401 challenge names the RFC 9728 metadata (path-inserted) and the scope', async () => {
    const res = await request(endpointA, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
    assert.equal(res.statusCode, 401);
    await res.body.dump();
    assert.equal(res.headers['www-authenticate'], `Bearer resource_metadata="${tc.cluster.url}/.well-known/oauth-protected-resource/svc/mcp-a/mcp", scope="mcp"`);
  });

  test('no-DNS form: PRM resource is exactly the endpoint URL, AS is the cluster', async () => {
    const res = await fetch(`${tc.cluster.url}/.well-known/oauth-protected-resource/svc/mcp-b/mcp`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const prm = (await res.json()) as Record<string, unknown>;
    assert.equal(prm.resource, endpointB);
    assert.deepEqual(prm.authorization_servers, [tc.cluster.url]);
    assert.deepEqual(prm.scopes_supported, ['mcp', 'tools:read']);
    // Not an MCP Service: no metadata.
    assert.equal((await fetch(`${tc.cluster.url}/.well-known/oauth-protected-resource/svc/plain/mcp`)).status, 404);
  });

  test('host form: challenge and PRM on <svc>.<domain>, resource = http://mcp-a.<domain>/mcp', async () => {
    const host = `mcp-a.${tc.cluster.domain}`;
    const res = await request(`${tc.cluster.url}/mcp`, { method: 'POST', headers: { host, 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
    assert.equal(res.statusCode, 401);
    await res.body.dump();
    assert.match(String(res.headers['www-authenticate']), new RegExp(`resource_metadata="http://${host.replace(/\./g, '\\.')}/\\.well-known/oauth-protected-resource/mcp"`));
    const prm = await request(`${tc.cluster.url}/.well-known/oauth-protected-resource/mcp`, { headers: { host } });
    assert.equal(prm.statusCode, 200);
    assert.equal(((await prm.body.json()) as { resource: string }).resource, `http://${host}/mcp`);
  });

  test('RFC 8414 and OIDC discovery documents: same issuer, S256, DCR and CIMD advertised', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const md = (await (await fetch(`${tc.cluster.url}${path}`)).json()) as Record<string, unknown>;
      assert.equal(md.issuer, tc.cluster.url, path);
      assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
      assert.equal(md.registration_endpoint, `${tc.cluster.url}/oauth2/register`);
      assert.equal(md.client_id_metadata_document_supported, true);
      assert.ok((md.token_endpoint_auth_methods_supported as string[]).includes('none'));
      assert.ok((md.scopes_supported as string[]).includes('tools:read'));
      const jwks = (await (await fetch(String(md.jwks_uri))).json()) as { keys: Array<{ kid: string }> };
      assert.ok(jwks.keys.length >= 1);
    }
  });
});

describe('MCP authorization: the SDK client with DCR + PKCE', () => {
  let provider: MemoryOAuthProvider;

  test('connects from only the URL, lists tools, calls add', async () => {
    const r = await sdkLogin(endpointA);
    provider = r.provider;
    const tools = await r.client.listTools();
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['add', 'subtract']);
    const res = (await r.client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })) as { content: Array<{ text: string }> };
    assert.equal(res.content[0].text, '5');
    await r.client.close();
    assert.ok(upstreamAuth.length > 0 && upstreamAuth.every((a) => a === undefined), 'the client token is never forwarded upstream');
  });

  test('the token is audience-bound to the resource (RFC 8707) and carries the challenged scope', () => {
    const claims = decodeJwt(provider.savedTokens!.access_token);
    assert.equal(claims.aud, endpointA);
    assert.equal(claims.scope, 'mcp');
    assert.equal(claims.iss, tc.cluster.url);
    assert.ok(provider.savedTokens!.refresh_token);
    assert.match(String(provider.client!.client_id), /^mcp_/);
  });

  test("a token minted for another Service's resource is rejected with 401 invalid_token", async () => {
    const other = await sdkLogin(endpointB);
    await other.client.close();
    const tokenB = other.provider.savedTokens!.access_token;
    assert.equal(decodeJwt(tokenB).aud, endpointB);
    const call = (url: string) => request(url, {
      method: 'POST', headers: { authorization: `Bearer ${tokenB}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    const wrong = await call(endpointA);
    assert.equal(wrong.statusCode, 401);
    assert.match(String(wrong.headers['www-authenticate']), /error="invalid_token"/);
    await wrong.body.dump();
    // The same token is good at its own resource, and at plain (non-MCP) Services it is refused too.
    const right = await call(endpointB);
    assert.equal(right.statusCode, 200);
    await right.body.dump();
    const plain = await call(`${tc.cluster.url}/svc/plain/mcp`);
    assert.equal(plain.statusCode, 401);
    await plain.body.dump();
  });

  test('refresh: rotation works; replaying a used refresh token revokes the grant', async () => {
    const form = (rt: string) => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, client_id: String(provider.client!.client_id), resource: endpointA });
    const old = provider.savedTokens!.refresh_token!;
    const r1 = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: form(old) });
    assert.equal(r1.status, 200);
    const t1 = (await r1.json()) as { access_token: string; refresh_token: string };
    assert.notEqual(t1.refresh_token, old);
    assert.equal(decodeJwt(t1.access_token).aud, endpointA);
    const ping = async (t: string) => (await request(endpointA, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) }).then(async (r) => (await r.body.dump(), r.statusCode)));
    assert.equal(await ping(t1.access_token), 200);
    const replay = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: form(old) });
    assert.equal(replay.status, 400);
    assert.equal(((await replay.json()) as { error: string }).error, 'invalid_grant');
    assert.equal(await ping(t1.access_token), 401, 'the whole grant (its Session) is revoked');
    const after = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: form(t1.refresh_token) });
    assert.equal(after.status, 400);
  });
});

describe('MCP authorization: authorization server details', () => {
  async function register(meta: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await fetch(`${tc.cluster.url}/oauth2/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(meta) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }
  const redirect = 'http://127.0.0.1:9/cb';
  const verifier = 'v'.repeat(50);
  const challenge = 'CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A'; // base64url(sha256('v' * 50))

  function authorizeUrl(clientId: string, extra: Record<string, string> = {}): URL {
    const u = new URL(`${tc.cluster.url}/oauth2/authorize`);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: 'st-1', resource: endpointA, ...extra })) u.searchParams.set(k, v);
    return u;
  }

  test('DCR validates metadata: http redirect to a non-loopback host and javascript: are refused', async () => {
    assert.equal((await register({ redirect_uris: ['http://evil.example.com/cb'], token_endpoint_auth_method: 'none' })).body.error, 'invalid_redirect_uri');
    assert.equal((await register({ redirect_uris: ['javascript:alert(1)'], token_endpoint_auth_method: 'none' })).body.error, 'invalid_redirect_uri');
    assert.equal((await register({ redirect_uris: [redirect], grant_types: ['client_credentials'] })).body.error, 'invalid_client_metadata');
    const ok = await register({ redirect_uris: [redirect], token_endpoint_auth_method: 'none', client_name: 'Test' });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.client_secret, undefined, 'public clients get no secret');
  });

  test('consent: deny → access_denied; a WORKLOAD auth token may consent (no IdP for it); PKCE and code reuse are enforced', async () => {
    const { body } = await register({ redirect_uris: [redirect], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
    const clientId = String(body.client_id);
    const denied = await submitConsent(authorizeUrl(clientId), aliceAuthToken, 'deny');
    assert.equal(denied.location?.searchParams.get('error'), 'access_denied');
    assert.equal(denied.location?.searchParams.get('state'), 'st-1');
    const robot = await submitConsent(authorizeUrl(clientId), robotAuthToken);
    assert.equal(robot.status, 303, robot.page);
    assert.ok(robot.location?.searchParams.get('code'));
    const bad = await submitConsent(authorizeUrl(clientId), 'oct_not-a-token');
    assert.equal(bad.status, 401);
    // No PKCE → error redirected to the client.
    const noPkce = await fetch(authorizeUrl(clientId, { code_challenge_method: 'plain' }), { redirect: 'manual' });
    assert.equal(new URL(noPkce.headers.get('location')!).searchParams.get('error'), 'invalid_request');
    // Unknown resource → invalid_target.
    const badTarget = await fetch(authorizeUrl(clientId, { resource: 'https://elsewhere.example.com/mcp' }), { redirect: 'manual' });
    assert.equal(new URL(badTarget.headers.get('location')!).searchParams.get('error'), 'invalid_target');
    // Unregistered redirect URI → error page, never a redirect.
    const open = await fetch(authorizeUrl(clientId, { redirect_uri: 'http://127.0.0.1:9/other' }), { redirect: 'manual' });
    assert.equal(open.status, 400);

    const ok = await submitConsent(authorizeUrl(clientId), aliceAuthToken);
    assert.equal(ok.location?.searchParams.get('iss'), tc.cluster.url);
    const code = ok.location!.searchParams.get('code')!;
    const exchange = (v: string) => fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: v, client_id: clientId, redirect_uri: redirect, resource: endpointA }) });
    const wrong = await exchange('w'.repeat(50));
    assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_grant');
    const good = await exchange(verifier);
    assert.equal(good.status, 200);
    const tokens = (await good.json()) as Record<string, unknown>;
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.refresh_token, undefined, 'no refresh token without the refresh_token grant');
    const reuse = await exchange(verifier);
    assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant');
  });

  test('client_credentials keeps working as before, and binds aud when given a resource', async () => {
    const { token } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'robot-oauth' }, spec: { type: 'OAUTH2', user: 'robot' } });
    const basic = `Basic ${Buffer.from(`${token.clientID}:${token.clientSecret}`).toString('base64')}`;
    const plain = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ grant_type: 'client_credentials' }) });
    const t0 = (await plain.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(t0).sort(), ['access_token', 'expires_in', 'token_type']);
    assert.equal(decodeJwt(String(t0.access_token)).aud, undefined);
    const bound = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: endpointB }) });
    assert.equal(decodeJwt(String(((await bound.json()) as Record<string, unknown>).access_token)).aud, endpointB);
    const bad = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', headers: { authorization: basic }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: 'http://nope.example/mcp' }) });
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid_target');
  });

  test('insufficient scope: a token whose scope lacks the Service scope gets 403 insufficient_scope', async () => {
    const { token } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'robot-oauth-2' }, spec: { type: 'OAUTH2', user: 'robot' } });
    const r = await fetch(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: token.clientID!, client_secret: token.clientSecret!, scope: 'mcp' }) });
    const at = ((await r.json()) as { access_token: string }).access_token;
    const res = await request(endpointB, { method: 'POST', headers: { authorization: `Bearer ${at}`, 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
    assert.equal(res.statusCode, 403);
    await res.body.dump();
    assert.match(String(res.headers['www-authenticate']), /^Bearer error="insufficient_scope", scope="mcp tools:read", resource_metadata=/);
  });
});

describe('MCP authorization: Client ID Metadata Documents', () => {
  test('SSRF guard: https only, no private/loopback/link-local addresses', async () => {
    assert.equal(isAllowedAddress('8.8.8.8'), true);
    for (const ip of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '192.168.1.1', '::1', 'fd00::1', '::ffff:10.0.0.1', '100.64.0.1']) assert.equal(isAllowedAddress(ip), false, ip);
    for (const clientId of ['http://example.com/client.json', 'https://127.0.0.1/client.json', 'https://169.254.169.254/latest/meta-data', 'https://localhost/c.json', 'https://example.com/']) {
      const u = new URL(`${tc.cluster.url}/oauth2/authorize`);
      u.searchParams.set('client_id', clientId);
      const res = await fetch(u, { redirect: 'manual' });
      assert.equal(res.status, 400, clientId);
      assert.match(await res.text(), /Unknown application/);
    }
  });

  test('with the dev loopback flag, a loopback document is fetched and the SDK logs in with it', async () => {
    let docServer: Server | undefined;
    let cluster: Cluster | undefined;
    const dataDir = tempDir();
    try {
      let docUrl = '';
      docServer = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
        res.end(JSON.stringify({ client_id: docUrl, client_name: 'CIMD test client', redirect_uris: ['http://127.0.0.1:9/cimd-cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none' }));
      });
      await new Promise<void>((r) => docServer!.listen(0, '127.0.0.1', r));
      docUrl = `http://127.0.0.1:${(docServer.address() as AddressInfo).port}/client.json`;
      cluster = await startCluster({ dataDir, port: 0, oauth: { cimdAllowLoopbackHttp: true } });
      const u = new URL(`${cluster.url}/oauth2/authorize`);
      for (const [k, v] of Object.entries({ response_type: 'code', client_id: docUrl, redirect_uri: 'http://127.0.0.1:9/cimd-cb', code_challenge: 'CrlVwe1WSHWuTQYh3iczmx3aS-faRx6C92k9_hNxl4A', code_challenge_method: 'S256' })) u.searchParams.set(k, v);
      const page = await fetch(u);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /CIMD test client/);
      // A redirect URI the document does not list is refused.
      u.searchParams.set('redirect_uri', 'http://127.0.0.1:9/elsewhere');
      assert.equal((await fetch(u, { redirect: 'manual' })).status, 400);
    } finally {
      await cluster?.close();
      await new Promise((r) => docServer?.close(r));
    }
  });
});
