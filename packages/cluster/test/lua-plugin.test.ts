import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { OcteliumError, type Resource } from '@octelium-ts/shared';
import type { RequestFacts } from '../src/gateway/request-facts.js';
import {
  LuaPluginHost,
  checkLuaScript,
  createHttpFetch,
  type LuaHttpRequest,
  type LuaHttpResponse,
  type LuaRequestState,
} from '../src/plugins/lua/index.js';

// ---------------------------------------------------------------------------------------------------------
// Fixtures

/** The seed's plugin script, exactly as written in the manifest (never edited here). */
const SEED_SCRIPT: string = (() => {
  const doc = parse(readFileSync(fileURLToPath(new URL('./fixtures/seed/05-lua-plugin.yaml', import.meta.url)), 'utf8')) as {
    spec: { config: { http: { plugins: { name: string; lua: { inline: string } }[] } } };
  };
  const plugin = doc.spec.config.http.plugins[0];
  assert.equal(plugin.name, 'check-inputs');
  return plugin.lua.inline;
})();

function userResource(uid: string, email: string): Resource {
  return { apiVersion: 'core/v1', kind: 'User', metadata: { name: email.split('@')[0], uid }, spec: { email, type: 'HUMAN' } };
}

function factsFor(user: Resource, headers: Record<string, string> = {}): RequestFacts {
  return {
    user,
    service: { apiVersion: 'core/v1', kind: 'Service', metadata: { name: 'my-mcp', uid: 'svc-1' }, spec: { port: 8080 } },
    request: {
      http: { method: 'POST', path: '/mcp', uri: '/mcp?x=1', scheme: 'https', host: 'my-mcp.example.com', headers, query: { x: '1' } },
    },
  };
}

const ALICE = userResource('uid-alice-1', 'alice@example.com');
const MALLORY = userResource('uid-mallory-9', 'mallory@evil.test');

function toolsCall(name: string, args: Record<string, unknown>, id: number | string = 7): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
}

function reqState(body: string | undefined, headers: Record<string, string> = {}): LuaRequestState {
  return { method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json', ...headers }, body };
}

async function rejectsWith(p: Promise<unknown>, reason: string, messagePart: RegExp): Promise<OcteliumError> {
  const err = await p.then(
    () => assert.fail('expected the plugin call to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof OcteliumError, `expected OcteliumError, got ${String(err)}`);
  assert.equal(err.code, 'OCT_ERR_PLUGIN_FAILED');
  assert.equal(err.httpStatus, 500);
  assert.deepEqual(err.details, { reason });
  assert.match(err.message, messagePart);
  return err;
}

// ---------------------------------------------------------------------------------------------------------
// A real local check-mcp: the JSON schema for `sub` params and the allow/deny decision.

/** Only subtractions with 0 <= a <= 100 are valid (the seed clamps a < 0 to 0 before validating). */
const SUB_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  required: ['name', 'arguments'],
  properties: {
    name: { const: 'sub' },
    arguments: {
      type: 'object',
      required: ['a', 'b', 'userUID', 'userEmail'],
      properties: { a: { type: 'integer', maximum: 100 }, b: { type: 'integer' }, userUID: { type: 'string' }, userEmail: { type: 'string' } },
    },
  },
};

interface CheckServer {
  server: Server;
  port: number;
  calls: { path: string; body: string; contentType?: string }[];
  schemaStatus: number;
}

async function startCheckServer(): Promise<CheckServer> {
  const state: CheckServer = { server: undefined as unknown as Server, port: 0, calls: [], schemaStatus: 200 };
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  state.server = createServer(async (req, res) => {
    const body = await readBody(req);
    state.calls.push({ path: req.url ?? '', body, contentType: req.headers['content-type'] });
    if (req.method === 'POST' && req.url === '/v1/get-json-schema') {
      res.writeHead(state.schemaStatus, { 'content-type': 'application/json' });
      res.end(state.schemaStatus === 200 ? JSON.stringify(SUB_SCHEMA) : '{}');
    } else if (req.method === 'POST' && req.url === '/v1/check-subtract-params') {
      const params = JSON.parse(body) as { arguments: { userEmail?: string } };
      const allowed = typeof params.arguments.userEmail === 'string' && params.arguments.userEmail.endsWith('@example.com');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ userIsAllowed: allowed }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

/**
 * The check server is on 127.0.0.1, which the default http.client transport refuses: like the cluster's own
 * `<svc>.svc` resolution, this stand-in reaches it through a transport that allows private networks.
 */
const localFetch = createHttpFetch({ allowPrivateNetworks: true });
after(() => localFetch.close());

/** Stands in for the cluster's resolver: `check-mcp.default.svc` is the local check server (or a dead port). */
function clusterFetch(port: () => number, seen?: LuaHttpRequest[]) {
  return (req: LuaHttpRequest): Promise<LuaHttpResponse> => {
    seen?.push(req);
    const url = new URL(req.url);
    assert.equal(url.host, 'check-mcp.default.svc', 'the script only talks to check-mcp');
    return localFetch({ ...req, url: `http://127.0.0.1:${port()}${url.pathname}${url.search}` });
  };
}

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------------------------------------

describe('seed Lua plugin (unchanged script)', () => {
  let check: CheckServer;
  let host: LuaPluginHost;
  const outgoing: LuaHttpRequest[] = [];

  before(async () => {
    check = await startCheckServer();
    host = new LuaPluginHost({ httpFetch: clusterFetch(() => check.port, outgoing) });
  });
  after(async () => {
    await host.close();
    await new Promise<void>((resolve) => check.server.close(() => resolve()));
  });

  test('the script is the seed text and compiles', async () => {
    assert.match(SEED_SCRIPT, /^function onRequest\(ctx\)\n {2}local body = json\.decode\(octelium\.req\.getRequestBody\(\)\)/);
    assert.match(SEED_SCRIPT, /octelium\.req\.setRequestBody\(json\.encode\(body\)\)\nend\n$/);
    assert.equal(await checkLuaScript(SEED_SCRIPT), undefined);
  });

  test('another-add is renamed to add, a < 0 and b > 1000 clamped, user uid/email injected', async () => {
    const state = reqState(toolsCall('another-add', { a: -5, b: 5000 }));
    const outcome = await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(ALICE), state);
    assert.deepEqual(outcome, { kind: 'continue', bodyChanged: true, headersChanged: false, pathChanged: false });
    assert.deepEqual(JSON.parse(state.body!), {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'add', arguments: { a: 0, b: 1000, userUID: 'uid-alice-1', userEmail: 'alice@example.com' } },
    });
    // Re-encoding keeps the member order of the original message.
    assert.match(state.body!, /^\{"jsonrpc":"2\.0","id":7,"method":"tools\/call","params":\{"name":"add","arguments":\{"a":0,"b":1000,/);
    assert.equal(check.calls.length, 0, 'add never calls the check service');
  });

  test('values inside the limits pass unchanged; other users get their own identity', async () => {
    const state = reqState(toolsCall('add', { a: 3, b: 1000, note: 'x' }, 'req-1'));
    await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(MALLORY), state);
    assert.deepEqual(JSON.parse(state.body!).params, {
      name: 'add',
      arguments: { a: 3, b: 1000, note: 'x', userUID: 'uid-mallory-9', userEmail: 'mallory@evil.test' },
    });
    assert.equal(JSON.parse(state.body!).id, 'req-1');
  });

  test('sub: allowed by schema and check service, request continues with injected identity', async () => {
    check.calls.length = 0;
    outgoing.length = 0;
    const state = reqState(toolsCall('sub', { a: 50, b: 8 }));
    const outcome = await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(ALICE), state);
    assert.equal(outcome.kind, 'continue');
    assert.deepEqual(JSON.parse(state.body!).params.arguments, { a: 50, b: 8, userUID: 'uid-alice-1', userEmail: 'alice@example.com' });
    assert.deepEqual(
      check.calls.map((c) => c.path),
      ['/v1/get-json-schema', '/v1/check-subtract-params'],
    );
    assert.equal(check.calls[0].body, '', 'the schema request is sent before setBody');
    assert.deepEqual(JSON.parse(check.calls[1].body), { name: 'sub', arguments: { a: 50, b: 8, userUID: 'uid-alice-1', userEmail: 'alice@example.com' } });
    assert.deepEqual(
      outgoing.map((r) => [r.method, r.url]),
      [
        ['POST', 'http://check-mcp.default.svc/v1/get-json-schema'],
        ['POST', 'http://check-mcp.default.svc/v1/check-subtract-params'],
      ],
    );
  });

  test('sub: params failing json.isSchemaValid exit with 400 before the check call', async () => {
    check.calls.length = 0;
    const state = reqState(toolsCall('sub', { a: 500, b: 1 }));
    const before = state.body;
    const outcome = await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(ALICE), state);
    assert.deepEqual(outcome, { kind: 'exit', status: 400 });
    assert.deepEqual(
      check.calls.map((c) => c.path),
      ['/v1/get-json-schema'],
    );
    assert.equal(state.body, before, 'an exited request keeps its body');
  });

  test('sub: a negative a is clamped to 0 before validation and passes', async () => {
    const state = reqState(toolsCall('sub', { a: -20, b: 1 }));
    const outcome = await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(ALICE), state);
    assert.equal(outcome.kind, 'continue');
    assert.equal(JSON.parse(state.body!).params.arguments.a, 0);
  });

  test('sub: userIsAllowed false exits with 403', async () => {
    check.calls.length = 0;
    const state = reqState(toolsCall('sub', { a: 5, b: 1 }));
    const outcome = await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(MALLORY), state);
    assert.deepEqual(outcome, { kind: 'exit', status: 403 });
    assert.equal(JSON.parse(check.calls[1].body).arguments.userEmail, 'mallory@evil.test');
  });

  test('sub: without a schema (non-200) only the check service decides', async () => {
    check.schemaStatus = 404;
    try {
      const state = reqState(toolsCall('sub', { a: 500, b: 1 }));
      const outcome = await host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(ALICE), state);
      assert.equal(outcome.kind, 'continue', 'a=500 is only refused by the schema, which is absent now');
    } finally {
      check.schemaStatus = 200;
    }
  });

  test('sub: check service unreachable exits with 500', async () => {
    const port = await deadPort();
    const isolated = new LuaPluginHost({ httpFetch: clusterFetch(() => port) });
    try {
      const outcome = await isolated.runOnRequest('k', SEED_SCRIPT, factsFor(ALICE), reqState(toolsCall('sub', { a: 1, b: 1 })));
      assert.deepEqual(outcome, { kind: 'exit', status: 500 });
      // The same host still serves requests that do not need the check service.
      const ok = await isolated.runOnRequest('k', SEED_SCRIPT, factsFor(ALICE), reqState(toolsCall('add', { a: 1, b: 1 })));
      assert.equal(ok.kind, 'continue');
    } finally {
      await isolated.close();
    }
  });

  test('concurrent calls waiting on the check service keep their own state', async () => {
    const users = [ALICE, MALLORY, userResource('uid-bob-2', 'bob@example.com'), userResource('uid-eve-3', 'eve@evil.test')];
    const states = users.map((_, i) => reqState(toolsCall('sub', { a: i, b: 1 }, i)));
    const outcomes = await Promise.all(users.map((u, i) => host.runOnRequest('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(u), states[i])));
    assert.deepEqual(
      outcomes.map((o) => (o.kind === 'exit' ? o.status : 'continue')),
      ['continue', 403, 'continue', 403],
    );
    assert.equal(JSON.parse(states[2].body!).params.arguments.userUID, 'uid-bob-2');
    assert.equal(JSON.parse(states[0].body!).params.arguments.userUID, 'uid-alice-1');
  });

  test('the seed has no onResponse: responses pass through untouched', async () => {
    assert.equal(await host.hasHook('svc-1/1/check-inputs', SEED_SCRIPT, 'onResponse'), false);
    assert.equal(await host.hasHook('svc-1/1/check-inputs', SEED_SCRIPT, 'onRequest'), true);
    const resp = { status: 200, headers: { 'content-type': 'application/json' }, body: '{"result":1}' };
    const outcome = await host.runOnResponse('svc-1/1/check-inputs', SEED_SCRIPT, factsFor(ALICE), resp);
    assert.deepEqual(outcome, { kind: 'continue', bodyChanged: false, headersChanged: false, statusChanged: false });
    assert.equal(resp.body, '{"result":1}');
  });
});

describe('budget and failures', () => {
  test('an infinite loop is stopped by the timeout, and the next request on the same script works', async () => {
    const host = new LuaPluginHost({ poolSize: 1 });
    const script = `function onRequest(ctx)
      if octelium.req.getRequestBody() == "loop" then while true do end end
      octelium.req.setRequestBody("done")
    end`;
    try {
      const t0 = performance.now();
      await rejectsWith(host.runOnRequest('loop', script, factsFor(ALICE), reqState('loop'), 30), 'timeout', /30 ms CPU budget/);
      const elapsed = performance.now() - t0;
      assert.ok(elapsed >= 30 && elapsed < 1000, `stopped after ${elapsed.toFixed(1)} ms`);
      const state = reqState('go');
      assert.equal((await host.runOnRequest('loop', script, factsFor(ALICE), state, 30)).kind, 'continue');
      assert.equal(state.body, 'done');
    } finally {
      await host.close();
    }
  });

  test('pcall cannot swallow the timeout, in plain code or inside a C call', async () => {
    const host = new LuaPluginHost();
    try {
      const nested = 'function onRequest(ctx) while true do pcall(function() while true do end end) end end';
      await rejectsWith(host.runOnRequest('pcall', nested, factsFor(ALICE), reqState('')), 'timeout', /CPU budget/);
      const inSort = `function onRequest(ctx)
        local t = {3, 1, 2}
        while true do pcall(table.sort, t, function(a, b) while true do pcall(error, "x") end end) end
      end`;
      await rejectsWith(host.runOnRequest('sort', inSort, factsFor(ALICE), reqState('')), 'timeout', /CPU budget/);
      const inCoroutine = 'function onRequest(ctx) local co = coroutine.wrap(function() while true do end end); co(); octelium.req.exit(200) end';
      await rejectsWith(host.runOnRequest('co', inCoroutine, factsFor(ALICE), reqState('')), 'timeout', /CPU budget/);
    } finally {
      await host.close();
    }
  });

  test('time spent waiting on http.client does not count against the CPU budget; the http cap does', async () => {
    const slow = new LuaPluginHost({
      httpTimeoutMs: 300,
      // '/hang' never answers; anything else answers after 120 ms, six times the 20 ms CPU budget.
      httpFetch: (req) =>
        req.url.endsWith('/hang') ? new Promise<never>(() => {}) : new Promise((resolve) => setTimeout(() => resolve({ status: 200, body: 'late' }), 120)),
    });
    const script = `function onRequest(ctx)
      local c = http.client()
      c:setBaseURL("http://check-mcp.default.svc")
      local resp, err = c:request():get(octelium.req.getPath())
      if err then octelium.req.exit(504, err) return end
      -- Enough work after the wait for the budget hook to run (it checks every 1000 instructions).
      local n = 0
      for i = 1, 20000 do n = n + i end
      octelium.req.setRequestBody(resp:body() .. ":" .. resp:code())
    end`;
    try {
      const state = { ...reqState(''), path: '/slow' };
      const outcome1 = await slow.runOnRequest('wait', script, factsFor(ALICE), state, 20);
      assert.equal(outcome1.kind, 'continue');
      assert.equal(state.body, 'late:200');
      const t0 = performance.now();
      const outcome = await slow.runOnRequest('wait', script, factsFor(ALICE), { ...reqState(''), path: '/hang' }, 20);
      assert.deepEqual(outcome, { kind: 'exit', status: 504, body: 'timeout after 300 ms' });
      const waited = performance.now() - t0;
      assert.ok(waited >= 290 && waited < 2000, `http cap hit after ${waited.toFixed(0)} ms`);
    } finally {
      await slow.close();
    }
  });

  test('the memory cap stops a script that allocates without bound; the engine keeps working', async () => {
    const host = new LuaPluginHost({ memoryLimitBytes: 4 * 1024 * 1024, poolSize: 1 });
    const script = `function onRequest(ctx)
      local mode = octelium.req.getRequestBody()
      if mode == "one" then local s = string.rep("x", 64 * 1024 * 1024) end
      if mode == "many" then local t = {} for i = 1, 1e7 do t[i] = string.rep("y", 64) .. i end end
      octelium.req.setRequestBody("fine")
    end`;
    try {
      await rejectsWith(host.runOnRequest('mem', script, factsFor(ALICE), reqState('one'), 1000), 'error', /not enough memory/);
      await rejectsWith(host.runOnRequest('mem', script, factsFor(ALICE), reqState('many'), 1000), 'error', /not enough memory/);
      const state = reqState('small');
      await host.runOnRequest('mem', script, factsFor(ALICE), state);
      assert.equal(state.body, 'fine');
    } finally {
      await host.close();
    }
  });

  test('print() goes to the log option with the script key', async () => {
    const lines: string[] = [];
    const host = new LuaPluginHost({ log: (key, line) => lines.push(`${key}|${line}`) });
    try {
      await host.runOnRequest('svc/1/logger', 'function onRequest(ctx) print("user", ctx.user.metadata.uid, 42, nil) end', factsFor(ALICE), reqState(''));
      assert.deepEqual(lines, ['svc/1/logger|user\tuid-alice-1\t42\tnil']);
    } finally {
      await host.close();
    }
  });

  test('a runtime error fails with the Lua message; a syntax error is reported at compile time', async () => {
    const host = new LuaPluginHost();
    try {
      await rejectsWith(
        host.runOnRequest('err', 'function onRequest(ctx)\n  local t = nil\n  return t.field\nend', factsFor(ALICE), reqState('')),
        'error',
        /plugin:3: attempt to index a nil value \(local 't'\)/,
      );
      await rejectsWith(host.runOnRequest('err2', 'function onRequest(ctx) error("custom failure") end', factsFor(ALICE), reqState('')), 'error', /custom failure/);
      await rejectsWith(host.runOnRequest('bad', 'function onRequest(ctx', factsFor(ALICE), reqState('')), 'compile', /does not compile: plugin:1:/);
      assert.match((await checkLuaScript('function onRequest(ctx')) ?? '', /^plugin:1: .*expected/);
      // Broken JSON in the body is a script failure (fail closed), not a crash.
      await rejectsWith(host.runOnRequest('seed', SEED_SCRIPT, factsFor(ALICE), reqState('{not json')), 'error', /json\.decode: invalid JSON/);
      // A schema that is not JSON is a failure (fail closed), not "invalid params".
      await rejectsWith(
        host.runOnRequest('schema', 'function onRequest(ctx) json.isSchemaValid("{", "{}") end', factsFor(ALICE), reqState('')),
        'error',
        /plugin:1: .*invalid JSON schema/,
      );
      // Host functions validate their arguments.
      await rejectsWith(host.runOnRequest('exit', 'function onRequest(ctx) octelium.req.exit(42) end', factsFor(ALICE), reqState('')), 'error', /out of range/);
    } finally {
      await host.close();
    }
  });
});

describe('sandbox', () => {
  test('no filesystem, process, module loading or debug access', async () => {
    const host = new LuaPluginHost();
    const script = `function onRequest(ctx)
      local report = {}
      for _, name in ipairs({ "io", "require", "load", "loadfile", "dofile", "package", "debug", "collectgarbage", "loadstring" }) do
        report[name] = type(_G[name])
      end
      report.os_execute = type(os.execute)
      report.os_getenv = type(os.getenv)
      report.os_remove = type(os.remove)
      report.os_time = type(os.time)
      report.string_dump = type(string.dump)
      report.string_mt = tostring(getmetatable(""))
      report.modify_lib = select(2, pcall(function() string.upper = nil end))
      report.gc = select(2, pcall(setmetatable, {}, { __gc = function() end }))
      octelium.req.setRequestBody(json.encode(report))
    end`;
    try {
      const state = reqState('');
      await host.runOnRequest('sandbox', script, factsFor(ALICE), state);
      const report = JSON.parse(state.body!) as Record<string, string>;
      for (const name of ['io', 'require', 'load', 'loadfile', 'dofile', 'package', 'debug', 'collectgarbage', 'loadstring']) {
        assert.equal(report[name], 'nil', `${name} must not exist`);
      }
      assert.equal(report.os_execute, 'nil');
      assert.equal(report.os_getenv, 'nil');
      assert.equal(report.os_remove, 'nil');
      assert.equal(report.os_time, 'function');
      assert.equal(report.string_dump, 'nil');
      assert.equal(report.string_mt, 'false');
      assert.match(report.modify_lib, /read-only/);
      assert.match(report.gc, /__gc/);
    } finally {
      await host.close();
    }
  });

  test('globals set by one request are gone for the next', async () => {
    const host = new LuaPluginHost({ poolSize: 1 });
    const script = `counter = (counter or 0) + 1
      function onRequest(ctx)
        seen = (seen or 0) + 1
        octelium.req.setRequestBody(counter .. "/" .. seen .. "/" .. tostring(json.leaked))
        pcall(function() json.leaked = true end)
      end`;
    try {
      for (let i = 0; i < 3; i++) {
        const state = reqState('');
        await host.runOnRequest('globals', script, factsFor(ALICE), state);
        assert.equal(state.body, '1/1/nil');
      }
    } finally {
      await host.close();
    }
  });

  test('ctx is read-only and lazily mirrors RequestFacts', async () => {
    const host = new LuaPluginHost();
    const script = `function onRequest(ctx)
      local keys = {}
      for k, v in pairs(ctx.request.http.headers) do keys[#keys + 1] = k .. "=" .. v end
      table.sort(keys)
      local ok, err = pcall(function() ctx.user = nil end)
      octelium.req.setRequestBody(json.encode({
        method = ctx.request.http.method,
        query = ctx.request.http.query.x,
        headers = keys,
        service = ctx.service.metadata.name,
        missing = ctx.session == nil,
        writeError = err,
        user = ctx.user.metadata,
      }))
    end`;
    try {
      const state = reqState('');
      await host.runOnRequest('ctx', script, factsFor(ALICE, { 'x-a': '1', 'x-b': '2' }), state);
      const out = JSON.parse(state.body!);
      assert.equal(out.method, 'POST');
      assert.equal(out.query, '1');
      assert.deepEqual(out.headers, ['x-a=1', 'x-b=2']);
      assert.equal(out.service, 'my-mcp');
      assert.equal(out.missing, true);
      assert.match(out.writeError, /ctx is read-only/);
      assert.deepEqual(out.user, { name: 'alice', uid: 'uid-alice-1' });
    } finally {
      await host.close();
    }
  });
});

describe('request and response manipulation', () => {
  test('request headers: get (case-insensitive), set, delete', async () => {
    const host = new LuaPluginHost();
    const script = `function onRequest(ctx)
      local client = octelium.req.getRequestHeader("X-Client")
      octelium.req.setRequestHeader("X-User-Email", ctx.user.spec.email)
      octelium.req.setRequestHeader("x-client-seen", client or "none")
      octelium.req.deleteRequestHeader("Authorization")
    end`;
    try {
      const state = reqState('{}', { 'x-client': 'cli/1.0', authorization: 'Bearer secret' });
      const outcome = await host.runOnRequest('hdr', script, factsFor(ALICE), state);
      assert.deepEqual(outcome, { kind: 'continue', bodyChanged: false, headersChanged: true, pathChanged: false });
      assert.deepEqual(state.headers, {
        'content-type': 'application/json',
        'x-client': 'cli/1.0',
        'x-user-email': 'alice@example.com',
        'x-client-seen': 'cli/1.0',
      });
      await rejectsWith(
        host.runOnRequest('hdr-bad', 'function onRequest(ctx) octelium.req.setRequestHeader("x-a", "v\\r\\nx-injected: 1") end', factsFor(ALICE), reqState('')),
        'error',
        /CR, LF/,
      );
    } finally {
      await host.close();
    }
  });

  test('onResponse rewrites the body, headers and status', async () => {
    const host = new LuaPluginHost();
    const script = `function onResponse(ctx)
      local msg = json.decode(octelium.resp.getResponseBody())
      msg.result.content[1].text = msg.result.content[1].text .. " (checked for " .. ctx.user.spec.email .. ")"
      msg.result.status = octelium.resp.getStatusCode()
      octelium.resp.setResponseBody(json.encode(msg))
      octelium.resp.setResponseHeader("X-Rewritten", octelium.resp.getResponseHeader("Content-Type"))
      octelium.resp.deleteResponseHeader("x-upstream-secret")
      if octelium.resp.getStatusCode() == 201 then octelium.resp.setStatusCode(200) end
    end`;
    try {
      assert.equal(await host.hasHook('resp', script, 'onResponse'), true);
      assert.equal(await host.hasHook('resp', script, 'onRequest'), false);
      const resp = {
        status: 201,
        headers: { 'content-type': 'application/json', 'x-upstream-secret': 's' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: '5' }], isError: false } }),
      };
      const outcome = await host.runOnResponse('resp', script, factsFor(ALICE), resp);
      assert.deepEqual(outcome, { kind: 'continue', bodyChanged: true, headersChanged: true, statusChanged: true });
      assert.equal(resp.status, 200);
      assert.deepEqual(resp.headers, { 'content-type': 'application/json', 'x-rewritten': 'application/json' });
      assert.deepEqual(JSON.parse(resp.body), {
        jsonrpc: '2.0',
        id: 3,
        result: { content: [{ type: 'text', text: '5 (checked for alice@example.com)' }], isError: false, status: 201 },
      });
      // onRequest does not exist: requests pass untouched; octelium.req is not usable from onResponse.
      assert.deepEqual(await host.runOnRequest('resp', script, factsFor(ALICE), reqState('x')), {
        kind: 'continue',
        bodyChanged: false,
        headersChanged: false,
        pathChanged: false,
      });
      await rejectsWith(
        host.runOnResponse('resp2', 'function onResponse(ctx) octelium.req.setRequestBody("x") end', factsFor(ALICE), { status: 200, headers: {}, body: '' }),
        'error',
        /only available in onRequest/,
      );
    } finally {
      await host.close();
    }
  });

  test('exit with a body, and path rewrite', async () => {
    const host = new LuaPluginHost();
    try {
      assert.deepEqual(
        await host.runOnRequest('exit', 'function onRequest(ctx) octelium.req.exit(418, "short and stout") end', factsFor(ALICE), reqState('')),
        { kind: 'exit', status: 418, body: 'short and stout' },
      );
      const state = reqState('');
      const outcome = await host.runOnRequest('path', 'function onRequest(ctx) octelium.req.setPath("/v2" .. octelium.req.getPath()) end', factsFor(ALICE), state);
      assert.equal(state.path, '/v2/mcp');
      assert.deepEqual(outcome, { kind: 'continue', bodyChanged: false, headersChanged: false, pathChanged: true });
    } finally {
      await host.close();
    }
  });

  test('json round trip keeps integers, floats, null, empty arrays/objects; arrays are sequences', async () => {
    const host = new LuaPluginHost();
    const script = `function onRequest(ctx)
      local v = json.decode(octelium.req.getRequestBody())
      v.count = #v.list
      v.first = v.list[1]
      v.lastIsNull = v.list[#v.list] == json.null
      v.intType = math.type(v.int)
      v.floatType = math.type(v.float)
      v.made = json.array()
      v.seq = { "x", "y" }
      octelium.req.setRequestBody(json.encode(v))
    end`;
    const input = { int: 42, float: 1.5, big: 9007199254740991, neg: -3, emptyA: [], emptyO: {}, nil: null, list: [10, 'two', { three: 3 }, null], nested: { a: [[1], []] } };
    try {
      const state = reqState(JSON.stringify(input));
      await host.runOnRequest('json', script, factsFor(ALICE), state);
      assert.deepEqual(JSON.parse(state.body!), {
        ...input,
        count: 4,
        first: 10,
        lastIsNull: true,
        intType: 'integer',
        floatType: 'float',
        made: [],
        seq: ['x', 'y'],
      });
      assert.match(state.body!, /^\{"int":42,"float":1\.5,"big":9007199254740991,"neg":-3,"emptyA":\[\],"emptyO":\{\},"nil":null,/);
      await rejectsWith(
        host.runOnRequest('json-cycle', 'function onRequest(ctx) local t = {}; t.self = t; json.encode(t) end', factsFor(ALICE), reqState('')),
        'error',
        /contains itself/,
      );
    } finally {
      await host.close();
    }
  });

  test('keys: a changed script under the same key is recompiled; evict drops engines', async () => {
    const host = new LuaPluginHost();
    try {
      const state = reqState('');
      await host.runOnRequest('svc/1/p', 'function onRequest(ctx) octelium.req.setRequestBody("v1") end', factsFor(ALICE), state);
      assert.equal(state.body, 'v1');
      await host.runOnRequest('svc/1/p', 'function onRequest(ctx) octelium.req.setRequestBody("v2") end', factsFor(ALICE), state);
      assert.equal(state.body, 'v2');
      host.evict('svc/');
      await host.runOnRequest('svc/2/p', 'function onRequest(ctx) octelium.req.setRequestBody("v3") end', factsFor(ALICE), state);
      assert.equal(state.body, 'v3');
      await host.close();
      await rejectsWith(host.runOnRequest('svc/2/p', 'function onRequest(ctx) end', factsFor(ALICE), state), 'fault', /closed/);
    } finally {
      await host.close();
    }
  });
});
