import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { oauth2Token, service, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { metricValue, parsePrometheus, startTelemetryCluster, type Sample } from './telemetry-support.js';

let tc: TestCluster;
let up: TestUpstream;
let aliceToken: string, bobToken: string;

async function scrape(token = tc.adminToken): Promise<Sample[]> {
  const res = await request(`${tc.cluster.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.body.text());
}

async function rpc(svc: string, token: string, method: string, params: unknown = {}): Promise<number> {
  const r = await request(`${tc.cluster.url}/svc/${svc}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  await r.body.text();
  return r.statusCode;
}

before(async () => {
  tc = await startTelemetryCluster({});
  up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
  });
  const buffered = { enableRequestBuffering: true, body: { mode: 'JSON' } };
  await tc.api.apply({
    resources: [
      user('alice'),
      user('bob', { authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'rest', effect: 'ALLOW', condition: { match: 'true' } }, { name: 'no-calls', effect: 'DENY', condition: { match: 'ctx.request.http.bodyMap.method == "tools/call"' } }] } }] } }),
      service('calc', { config: { upstream: { url: up.url }, http: buffered } }),
      service('scripted', { config: { upstream: { url: up.url }, http: { ...buffered, plugins: [{ name: 'noop', lua: { inline: 'function onRequest(ctx)\nend' } }] } } }),
      service('down', { config: { upstream: { url: 'http://127.0.0.1:1' } } }),
    ],
  });
  aliceToken = await oauth2Token(tc.api, tc.cluster.url, 'alice');
  bobToken = await oauth2Token(tc.api, tc.cluster.url, 'bob');
});
after(async () => {
  await up.close();
  await tc.close();
});

describe('/metrics (Prometheus text format)', () => {
  test('needs an admin token: 401 without, 403 for a non-admin', async () => {
    const none = await request(`${tc.cluster.url}/metrics`);
    assert.equal(none.statusCode, 401);
    assert.equal(((await none.body.json()) as { error: { code: string } }).error.code, 'OCT_ERR_UNAUTHENTICATED');
    const alice = await request(`${tc.cluster.url}/metrics`, { headers: { authorization: `Bearer ${aliceToken}` } });
    await alice.body.text();
    assert.equal(alice.statusCode, 403);
  });

  test('counters and histograms move as requests are made', async () => {
    const s0 = await scrape();
    for (let i = 0; i < 3; i++) assert.equal(await rpc('calc', aliceToken, 'tools/call', { name: 'add', arguments: { a: i, b: 1 } }), 200);
    assert.equal(await rpc('calc', aliceToken, 'tools/list'), 200);
    assert.equal(await rpc('calc', bobToken, 'tools/call', { name: 'add' }), 403);
    assert.equal(await rpc('calc', aliceToken, 'evil/method-' + Math.random()), 200);
    assert.equal(await rpc('scripted', aliceToken, 'ping'), 200);
    assert.equal(await rpc('down', aliceToken, 'ping'), 502);
    const unknown = await request(`${tc.cluster.url}/svc/no-such-svc-${Math.random().toString(36).slice(2)}/`);
    await unknown.body.text();
    const s1 = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => metricValue(s1, name, labels) - metricValue(s0, name, labels);

    assert.equal(delta('octelium_gateway_requests_total', { service: 'calc', namespace: 'default', decision: 'ALLOWED', code: '200' }), 5);
    assert.equal(delta('octelium_gateway_requests_total', { service: 'calc', decision: 'DENIED', code: '403' }), 1);
    assert.equal(delta('octelium_gateway_requests_total', { service: 'down', code: '502' }), 1);
    assert.equal(delta('octelium_gateway_requests_total', { service: '(unknown)', decision: 'DENIED' }), 1, 'a missing Service does not mint a label');
    assert.equal(s1.some((s) => s.labels.service?.startsWith('no-such-svc')), false);
    assert.equal(delta('octelium_gateway_request_duration_seconds_count', { service: 'calc', decision: 'ALLOWED' }), 5);
    assert.ok(delta('octelium_gateway_request_duration_seconds_sum', { service: 'calc' }) > 0);
    assert.equal(delta('octelium_gateway_upstream_errors_total', { service: 'down', code: 'OCT_ERR_UPSTREAM_FAILED' }), 1);
    assert.equal(delta('octelium_gateway_mcp_requests_total', { service: 'calc', method: 'tools/call', decision: 'ALLOWED' }), 3);
    assert.equal(delta('octelium_gateway_mcp_requests_total', { service: 'calc', method: 'tools/call', decision: 'DENIED' }), 1);
    assert.equal(delta('octelium_gateway_mcp_requests_total', { service: 'calc', method: 'other' }), 1, 'unknown methods are folded');
    // Every authenticated request to an existing Service got a decision: 6 calc + 1 scripted + 1 down.
    assert.equal(delta('octelium_gateway_policy_duration_seconds_count'), 8);
    assert.equal(delta('octelium_gateway_policy_duration_seconds_count', { decision: 'DENIED' }), 1);
    assert.equal(delta('octelium_gateway_plugin_duration_seconds_count', { service: 'scripted', type: 'lua' }), 1);
    // Histogram buckets are cumulative: +Inf equals the count.
    assert.equal(metricValue(s1, 'octelium_gateway_request_duration_seconds_bucket', { service: 'calc', decision: 'ALLOWED', le: '+Inf' }), metricValue(s1, 'octelium_gateway_request_duration_seconds_count', { service: 'calc', decision: 'ALLOWED' }));
  });

  test('tunnel gauges and process metrics are exposed', async () => {
    const s = await scrape();
    for (const name of ['octelium_tunnel_connections', 'octelium_tunnel_streams', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(s.some((x) => x.name === name), name);
    }
  });

  test('the parser rejects what is not the text format', () => {
    assert.throws(() => parsePrometheus('not a metric line at all'));
    assert.deepEqual(parsePrometheus('# HELP x y\nx{a="q\\"uote",b="n\\\\l"} 2.5\n'), [{ name: 'x', labels: { a: 'q"uote', b: 'n\\l' }, value: 2.5 }]);
  });
});

describe('metricsPublic', () => {
  test('serves /metrics without a token when configured', async () => {
    const open = await startTelemetryCluster({ metricsPublic: true });
    try {
      const r = await request(`${open.cluster.url}/metrics`);
      assert.equal(r.statusCode, 200);
      assert.ok(parsePrometheus(await r.body.text()).some((s) => s.name === 'octelium_tunnel_connections'));
    } finally {
      await open.close();
    }
  });
});
