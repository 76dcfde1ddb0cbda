/**
 * fast-check generators for hostile input, shared by the bounded fuzz tests and the long run in bench/fuzz.ts.
 * They lean towards the shapes that broke the cluster before (issue 18): dot segments, percent-encodings,
 * doubled slashes, absolute-form, deep nesting, non-object JSON-RPC, wrong types in manifests.
 */
import fc from 'fast-check';

const segmentPiece = fc.constantFrom(
  '', '.', '..', '%2e', '%2E%2e', '.%2e', 'a', 'svc', 'api', 'v1', 'services', 'echo', 'x', '%zz', '%', '%00', '%2f', '%2F',
  '%5c', '\\', 'a%20b', '%41', '~', ';x=1', '@', ':', 'é', '%C3%A9', '%ff', '*',
);
const segment = fc.array(segmentPiece, { minLength: 1, maxLength: 3 }).map((p) => p.join(''));
const query = fc.oneof(fc.constant(''), fc.constantFrom('?a=1', '?', '?x=%zz', '?redirect=//evil', '?a=../..', '?#frag'));

/** Request targets: origin-form built from tricky segments, plus absolute-form, `*`, and free text. */
export const targetArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.array(segment, { maxLength: 6 }), fc.constantFrom('/', '//', '/svc/', '/svc/echo/', '/api/v1/', '/.well-known/oauth-protected-resource/svc/'), query, fc.constantFrom('/', '//')).map(([s, prefix, q, sep]) => prefix + s.join(sep) + q) },
  { weight: 1, arbitrary: fc.constantFrom('*', 'http://localhost/svc/echo/', 'http://evil.example/', 'https://localhost:1/api/v1', 'relative', 'http://a@localhost/x') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }).filter((s) => !/[\s]/.test(s)) },
);

/** Host headers: ours, Services under ours, foreign, ports, IPv6, garbage. */
export const hostArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('localhost', 'localhost:8090', 'echo.localhost', 'a.b.localhost', 'a.b.c.localhost', '.localhost', 'LOCALHOST', '[::1]:80', '127.0.0.1', 'evil.example', ''),
  fc.string({ unit: 'grapheme-ascii', maxLength: 20 }).filter((s) => !/[\s]/.test(s)),
);

function nested(depth: number, leaf: string): string {
  return '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);
}

/** Request bodies as bytes: JSON-RPC-ish objects with hostile values, other JSON, deep nesting, broken UTF-8. */
export const jsonRpcBodyArbitrary: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue()),
    id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.jsonValue()),
    method: fc.oneof(fc.constantFrom('initialize', 'tools/list', 'tools/call', 'ping', 'notifications/initialized', 'denied', 'resources/read'), fc.jsonValue()),
    params: fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom('add', 'sub', 'another-add'), fc.jsonValue()), arguments: fc.oneof(fc.record({ a: fc.jsonValue(), b: fc.jsonValue() }), fc.jsonValue()) }), fc.jsonValue()),
  }, { requiredKeys: [] }).map((o) => Buffer.from(JSON.stringify(o))) },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  { weight: 1, arbitrary: fc.array(fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer(), method: fc.constant('tools/list') }), { maxLength: 3 }).map((a) => Buffer.from(JSON.stringify(a))) },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 9000 }).map((d) => Buffer.from(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${nested(d, '1')}}`)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"'), Buffer.from(b), Buffer.from('"}')])) },
);

type Json = unknown;

/** Replaces the value at a random path of `doc` (or adds a key there) with a random JSON value. */
function mutate(doc: Json, path: number[], value: Json, asNewKey: string | undefined): Json {
  if (doc === null || typeof doc !== 'object') return value;
  const copy: Record<string, Json> | Json[] = Array.isArray(doc) ? [...doc] : { ...(doc as Record<string, Json>) };
  const keys = Object.keys(copy);
  if (!keys.length || !path.length) {
    if (asNewKey !== undefined && !Array.isArray(copy)) (copy as Record<string, Json>)[asNewKey] = value;
    return keys.length ? copy : value;
  }
  const k = keys[path[0] % keys.length];
  (copy as Record<string, Json>)[k] = path.length === 1 && asNewKey === undefined ? value : mutate((copy as Record<string, Json>)[k], path.slice(1), value, asNewKey);
  return copy;
}

/** Manifests: the seed's documents with one value replaced or one unknown key added, or free YAML text. */
export function mutatedManifestArbitrary(seeds: Json[]): fc.Arbitrary<Json | string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(fc.nat(20), { minLength: 1, maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), fc.option(fc.constantFrom('unknownField', 'kind', 'metadata', 'spec', '__proto__', 'constructor'), { nil: undefined }))
      .map(([seed, path, value, key]) => mutate(seed, path, value, key)) },
    { weight: 1, arbitrary: fc.constantFrom('kind: Service\nmetadata:\n  name: x\n   spec: {}', '- a\n- b', 'kind: [', '&a [*a]', 'kind: List\nitems: [1, null, {kind: Nope}]', ': :', '---\n---\nkind: Service', 'kind: Service\nmetadata: {name: "../x"}\nspec: {mode: HTTP}') },
    { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
  );
}
