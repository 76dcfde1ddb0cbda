/**
 * Property-based fuzzing (issue 18 §5, docs/security.md) with bounded runs, so it stays in CI; `bench/fuzz.ts`
 * runs the same properties far longer. Set FUZZ_RUNS to scale every property here.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { OcteliumError, parseManifests, type Resource } from '@octelium-ts/shared';
import { parseRequestTarget } from '../src/server/request-target.js';
import { SEED_DIR, service, startTestCluster, user, oauth2Token, type TestCluster } from './helpers/testing.js';
import { rawRequest } from './helpers/raw-http.js';
import { targetArbitrary, hostArbitrary, jsonRpcBodyArbitrary, mutatedManifestArbitrary } from './helpers/fuzz-arbitraries.js';

const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (n: number) => ({ numRuns: Math.max(1, Math.round(n * SCALE)) });

describe('request targets through the router (pure)', () => {
  test('every target either routes to a normalised path or is a 400 — never another error', () => {
    fc.assert(fc.property(fc.constantFrom('GET', 'POST', 'OPTIONS'), targetArbitrary, hostArbitrary, (method, target, host) => {
      let t;
      try {
        t = parseRequestTarget(method, target, host, 'localhost');
      } catch (err) {
        assert.ok(err instanceof OcteliumError, `threw ${String(err)}`);
        assert.equal(err.httpStatus, 400);
        return;
      }
      if (t.kind === 'cluster' && t.path === '*') return;
      const path = t.kind === 'cluster' ? t.path : t.path.split('?')[0];
      assert.ok(path.startsWith('/'), path);
      assert.ok(!path.includes('//'), `unmerged slashes in ${path}`);
      assert.ok(!path.split('/').some((s) => /^(\.|%2e){1,2}$/i.test(s)), `dot segment left in ${path}`);
      assert.ok(!path.includes('\\'), `backslash in ${path}`);
      // Normalising is idempotent: what the policy saw is what a second parse (the upstream) sees.
      const again = parseRequestTarget(method, t.kind === 'cluster' ? t.path + t.query : t.path, t.kind === 'service' ? `${t.service}.${t.namespace}.localhost` : host, 'localhost');
      assert.equal(again.kind === 'service' ? again.path : again.path + (again.kind === 'cluster' ? again.query : ''), t.kind === 'service' ? t.path : t.path + t.query);
    }), runs(3000));
  });

  test('a /svc/<name>/ target never leaves its Service', () => {
    fc.assert(fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), targetArbitrary, (name, rest) => {
      try {
        const t = parseRequestTarget('GET', `/svc/${name}${rest}`, 'localhost', 'localhost');
        if (rest.startsWith('/') || rest.startsWith('?') || rest === '') assert.equal(t.kind === 'service' && t.service, name);
      } catch (err) {
        assert.ok(err instanceof OcteliumError && err.httpStatus === 400, String(err));
      }
    }), runs(3000));
  });
});

let tc: TestCluster;
let port: number;
let upstream: Server;
let token: string;

before(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}'));
    req.on('error', () => undefined);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const up = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  tc = await startTestCluster();
  port = tc.cluster.port;
  const seedLua = parse(readFileSync(join(SEED_DIR, '05-lua-plugin.yaml'), 'utf8')) as { spec: { config: { http: { plugins: unknown[] } } } };
  const seedPolicy = parse(readFileSync(join(SEED_DIR, '04-l7-policy.yaml'), 'utf8')) as { spec: { authorization: unknown } };
  await tc.api.apply({
    resources: [
      user('fuzzer', { email: 'fuzzer@example.com' }),
      service('anything', { isAnonymous: true, config: { upstream: { url: up } } }),
      // The seed's body policy and the seed's Lua plugin on one buffering JSON Service: every stage reads the body.
      service('body', {
        config: { upstream: { url: up }, http: { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 100_000 }, plugins: seedLua.spec.config.http.plugins } },
        authorization: seedPolicy.spec.authorization,
      }),
      { apiVersion: 'core/v1', kind: 'Service', metadata: { name: 'mcp' }, spec: { mode: 'MCP', isPublic: true, config: { upstream: { url: up } } } } as Resource,
      { apiVersion: 'core/v1', kind: 'Policy', metadata: { name: 'fuzz-allow' }, spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.request.http.bodyMap.method != "denied"' } }] } } as Resource,
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'fuzzer');
});

after(async () => {
  await tc.close();
  upstream.close();
});

describe('a real cluster under fuzzed input', () => {
  test('request targets and Host headers: always an answer below 500, and the process keeps serving', async () => {
    await fc.assert(fc.asyncProperty(targetArbitrary, hostArbitrary, async (target, host) => {
      // Bytes a client library would never send: the raw socket is the point.
      const r = await rawRequest(port, `GET ${target} HTTP/1.1\r\nhost: ${host.replace(/[\r\n]/g, '')}\r\nconnection: close\r\n\r\n`);
      assert.ok(r.status >= 200 && r.status < 500, `${JSON.stringify(target)} host ${JSON.stringify(host)} → ${r.raw.slice(0, 200)}`);
    }), runs(150));
    assert.deepEqual([...tc.cluster.faults.counts()], []);
  });

  test('JSON-RPC bodies through buffer → policy → Lua → MCP stages: no internal error, no fault', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom('/svc/body/', '/svc/mcp/mcp', '/svc/anything/'), jsonRpcBodyArbitrary, async (path, body) => {
      const r = await rawRequest(port, Buffer.concat([
        Buffer.from(`POST ${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`),
        body,
      ]));
      assert.ok(r.status > 0, 'no answer');
      // A plugin that fails closed answers 500 OCT_ERR_PLUGIN_FAILED by design; an unexpected exception is OCT_ERR_INTERNAL.
      assert.ok(!r.body.includes('OCT_ERR_INTERNAL'), `${path} ${body.toString('latin1').slice(0, 200)} → ${r.raw.slice(0, 300)}`);
    }), runs(150));
    assert.deepEqual([...tc.cluster.faults.counts()], []);
  });

  test('YAML through apply: every failure is a 4xx naming the file, document and field — never a 500', async () => {
    const seeds = readdirSync(SEED_DIR).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(SEED_DIR, f), 'utf8'));
    await fc.assert(fc.asyncProperty(mutatedManifestArbitrary(seeds.map((s) => parse(s) as unknown)), async (doc) => {
      const text = typeof doc === 'string' ? doc : stringify(doc);
      const { docs, errors } = parseManifests(text, 'fuzz.yaml');
      for (const e of errors) {
        assert.equal(e.file, 'fuzz.yaml');
        assert.ok(Number.isInteger(e.index) && e.index >= 0);
        assert.ok(e.path !== undefined || e.line !== undefined || /YAML|not a YAML/.test(e.message), `error names no field: ${JSON.stringify(e)}`);
      }
      // What the CLI would send when its own validation passes, and what a client without it could send.
      const bodies = [docs.map((d) => d.resource), typeof doc === 'string' ? [doc] : [doc]];
      for (const resources of bodies) {
        if (!resources.length) continue;
        const res = await fetch(`${tc.cluster.url}/api/v1/apply`, {
          method: 'POST', headers: { authorization: `Bearer ${tc.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ resources, dryRun: true }),
        });
        const text = await res.text();
        assert.ok(res.status < 500, `apply → ${res.status} ${text.slice(0, 300)}`);
        if (res.status >= 400) assert.match(text, /resources\[\d+\]|OCT_ERR_/, text.slice(0, 300));
      }
    }), runs(120));
    assert.deepEqual([...tc.cluster.faults.counts()], []);
  });
});
