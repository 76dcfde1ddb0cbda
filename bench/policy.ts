/**
 * Policy engine micro-benchmark: µs per authorization decision for a Service with 10 CEL rules over the
 * JSON-RPC bodyMap (target <= 10 µs). Run: `node --import tsx bench/policy.ts`.
 *
 * The rules are arranged so that every decision evaluates all 10 of them (no DENY matches, only the last
 * ALLOW does) — the worst case for a request that is allowed.
 */
import { pathToFileURL } from 'node:url';
import { validateResource, type Resource } from '@octelium-ts/shared';
import { openDatabase } from '../packages/cluster/src/store/db.js';
import { ResourceStore } from '../packages/cluster/src/store/resource-store.js';
import { BUILTIN_POLICIES, PolicyEngine } from '../packages/cluster/src/policy/index.js';
import { mcpRequestFacts } from './lib/facts.js';

const B = 'ctx.request.http.bodyMap';
const RULES = [
  { name: 'no-exec', effect: 'DENY', condition: { match: `${B}.params.name in ["exec", "shell", "eval"]` } },
  { name: 'no-etc', effect: 'DENY', condition: { match: `has(${B}.params.arguments.path) && ${B}.params.arguments.path.startsWith("/etc")` } },
  { name: 'no-huge', effect: 'DENY', condition: { match: `has(${B}.params.arguments.a) && ${B}.params.arguments.a > 1000000` } },
  { name: 'no-batch', effect: 'DENY', condition: { match: `has(${B}.batch) && ${B}.batch == true` } },
  { name: 'old-rpc', effect: 'DENY', condition: { not: `${B}.jsonrpc == "2.0"` } },
  { name: 'init', effect: 'ALLOW', condition: { match: `${B}.method == "initialize"` } },
  { name: 'list', effect: 'ALLOW', condition: { match: `${B}.method in ["tools/list", "resources/list", "prompts/list"]` } },
  { name: 'ping', effect: 'ALLOW', condition: { match: `${B}.method == "ping" || ${B}.method.startsWith("notifications/")` } },
  { name: 'admins', effect: 'ALLOW', condition: { match: 'ctx.user.spec.groups.exists(g, g == "admins")' } },
  {
    name: 'calc',
    effect: 'ALLOW',
    condition: {
      all: {
        of: [
          { match: `${B}.method == "tools/call"` },
          { match: `${B}.params.name in ["add", "subtract"]` },
          { match: `${B}.params.arguments.a < 1000` },
          { match: `${B}.params.arguments.b > 1000` },
        ],
      },
    },
  },
];

function setup(): { engine: PolicyEngine; service: Resource; user: Resource } {
  const store = new ResourceStore(openDatabase(':memory:'));
  for (const p of BUILTIN_POLICIES) store.create(p);
  const make = (doc: unknown) => {
    const v = validateResource(doc);
    if (!v.ok) throw new Error(JSON.stringify(v.issues));
    return store.create(v.resource);
  };
  const service = make({ kind: 'Service', metadata: { name: 'my-mcp' }, spec: { config: { upstream: { url: 'https://mcp.example.com' } }, authorization: { inlinePolicies: [{ spec: { rules: RULES } }] } } });
  make({ kind: 'Group', metadata: { name: 'dev' }, spec: {} });
  const user = make({ kind: 'User', metadata: { name: 'alice' }, spec: { type: 'HUMAN', email: 'alice@example.com', groups: ['dev'] } });
  return { engine: new PolicyEngine(store), service, user };
}


function timeIt(iterations: number, fn: (i: number) => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / 1000 / iterations;
}

export interface PolicyBenchResult { rules: number; freshFactsUs: number; memoizedFactsUs: number; deniedUs: number }

export function runPolicyBench(iterations = 200_000): PolicyBenchResult {
  const { engine, service, user } = setup();
  // Bodies as the gateway has them (JSON.parse output); parsing itself is not part of the decision.
  const bodies = Array.from({ length: 1024 }, (_, i) => JSON.parse(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: i % 2 ? 'add' : 'subtract', arguments: { a: i % 7 === 0 ? 4.5 : i % 900, b: 2000 + i } } })));
  const denied = JSON.parse('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":5000,"b":2000}}}');

  const check = engine.explain(mcpRequestFacts(service, user, bodies[1]));
  if (!check.allowed || check.rules.length !== RULES.length || check.rules.some((r) => r.error)) throw new Error(`bench setup is wrong: ${JSON.stringify(check)}`);
  if (engine.authorize(mcpRequestFacts(service, user, denied)).allowed) throw new Error('bench setup is wrong: a=5000 must be denied');

  const fresh = (i: number) => {
    // A new RequestFacts per request, as in the gateway: the ctx (incl. bodyMap conversion) is rebuilt.
    if (!engine.authorize(mcpRequestFacts(service, user, bodies[i & 1023])).allowed) throw new Error('unexpected deny');
  };
  const same = mcpRequestFacts(service, user, bodies[3]);
  const memo = () => {
    if (!engine.authorize(same).allowed) throw new Error('unexpected deny');
  };
  const deny = () => {
    if (engine.authorize(mcpRequestFacts(service, user, denied)).allowed) throw new Error('unexpected allow');
  };

  // Warm-up: let V8 optimise the engine and cel-js paths before measuring.
  timeIt(iterations / 2, fresh);
  timeIt(iterations / 2, memo);
  timeIt(iterations / 4, deny);
  return { rules: RULES.length, freshFactsUs: timeIt(iterations, fresh), memoizedFactsUs: timeIt(iterations, memo), deniedUs: timeIt(iterations, deny) };
}

function main(): void {
  const r = runPolicyBench();
  const fmt = (n: number) => n.toFixed(2).padStart(6);
  console.log(`policy engine: Service with ${r.rules} rules over bodyMap (all evaluated per decision), after warm-up`);
  console.log(`  decision, new RequestFacts per request   ${fmt(r.freshFactsUs)} µs   (target <= 10 µs)`);
  console.log(`  decision, same RequestFacts (ctx cached)  ${fmt(r.memoizedFactsUs)} µs`);
  console.log(`  denied decision (a=5000, NO_POLICY_MATCH)  ${fmt(r.deniedUs)} µs`);
  if (r.freshFactsUs > 10) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
