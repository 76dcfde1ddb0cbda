import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue, validateResource, type Issue, type Resource } from '@octelium-ts/shared';
import { BUILTIN_POLICIES, checkExpressions, compile } from '../src/policy/index.js';

/** Validates (so the shapes are what apply would store), then compile-checks. */
function check(doc: Record<string, unknown>): Issue[] {
  const v = validateResource(doc);
  if (!v.ok) assert.fail(`schema-invalid test document: ${JSON.stringify(v.issues)}`);
  return checkExpressions(v.resource);
}

const ok = 'ctx.request.http.method == "GET"';

describe('checkExpressions', () => {
  test('a syntax error deep inside a Policy rule: exact path, rule index and name, caret excerpt', () => {
    const issues = check({
      kind: 'Policy',
      metadata: { name: 'p1' },
      spec: {
        rules: [
          { name: 'fine', effect: 'ALLOW', condition: { match: ok } },
          { name: 'broken', effect: 'DENY', condition: { all: { of: [{ match: ok }, { match: 'ctx.request.http.path.startsWith("/a" ' }] } } },
        ],
      },
    });
    assert.equal(issues.length, 1);
    assert.deepEqual(issues[0].path, ['spec', 'rules', 1, 'condition', 'all', 'of', 1, 'match']);
    const msg = issues[0].message;
    assert.match(msg, /Policy "p1"/);
    assert.match(msg, /rule 1 "broken"/);
    assert.match(msg, />\s+1 \| ctx\.request\.http\.path\.startsWith\("\/a" /, 'quotes the expression');
    assert.match(msg, /\n\s+\^/, 'with a caret line');
    // The caret points into the expression where parsing failed (after `"/a" `), not at column 0.
    const lines = msg.split('\n');
    const exprLine = lines.find((l) => l.includes('| ctx.request'))!;
    const caretLine = lines[lines.indexOf(exprLine) + 1];
    assert.ok(caretLine.indexOf('^') > exprLine.indexOf('startsWith'), `caret at ${caretLine.indexOf('^')}`);
    assert.equal(formatIssue(issues[0]).startsWith('spec.rules[1].condition.all.of[1].match: '), true);
  });

  test('type errors, unknown variables and non-bool expressions are rejected; unnamed rules by index', () => {
    const issues = check({
      kind: 'Policy',
      metadata: { name: 'p2' },
      spec: {
        rules: [
          { effect: 'ALLOW', condition: { match: '1 + "x" == 2' } },
          { effect: 'ALLOW', condition: { match: 'request.method == "GET"' } },
          { effect: 'ALLOW', condition: { match: '"just a string"' } },
          { effect: 'ALLOW', condition: { match: ok } },
        ],
      },
    });
    assert.deepEqual(issues.map((i) => i.path), [
      ['spec', 'rules', 0, 'condition', 'match'],
      ['spec', 'rules', 1, 'condition', 'match'],
      ['spec', 'rules', 2, 'condition', 'match'],
    ]);
    assert.match(issues[0].message, /rule 0: .*no such overload/);
    assert.match(issues[1].message, /rule 1: .*Unknown variable: request/);
    assert.match(issues[2].message, /rule 2: .*must evaluate to bool.*string/s);
    for (const i of issues) assert.match(i.message, /\n>\s+1 \| .*\n\s+\^/, `caret excerpt in: ${i.message}`);
  });

  test('not (string and nested), any, none paths', () => {
    const issues = check({
      kind: 'Policy',
      metadata: { name: 'p3' },
      spec: {
        rules: [
          { effect: 'DENY', condition: { not: 'ctx.a ==' } },
          { effect: 'DENY', condition: { not: { any: { of: [{ match: ok }, { none: { of: [{ match: ')' }] } }] } } } },
        ],
      },
    });
    assert.deepEqual(issues.map((i) => i.path), [
      ['spec', 'rules', 0, 'condition', 'not'],
      ['spec', 'rules', 1, 'condition', 'not', 'any', 'of', 1, 'none', 'of', 0, 'match'],
    ]);
  });

  test('inline policies on Service, User, Group and Namespace', () => {
    const authorization = {
      inlinePolicies: [
        { spec: { rules: [{ effect: 'ALLOW', condition: { match: ok } }] } },
        { name: 'second', spec: { rules: [{ effect: 'ALLOW', condition: { match: ok } }, { name: 'bad', effect: 'DENY', condition: { match: 'ctx.x.' } }] } },
      ],
    };
    const expected = ['spec', 'authorization', 'inlinePolicies', 1, 'spec', 'rules', 1, 'condition', 'match'];
    for (const [kind, name] of [['Service', 'svc'], ['User', 'u'], ['Group', 'g'], ['Namespace', 'ns']]) {
      const issues = check({ kind, metadata: { name }, spec: { authorization } });
      assert.equal(issues.length, 1, kind);
      assert.deepEqual(issues[0].path, expected, kind);
      assert.match(issues[0].message, new RegExp(`${kind} "${name}", inline policy 1 "second", rule 1 "bad"`));
    }
  });

  test('Service plugins (config and dynamic configs) and dynamicConfig rules', () => {
    const issues = check({
      kind: 'Service',
      metadata: { name: 'mcp' },
      spec: {
        config: {
          upstream: { url: 'https://a.example.com' },
          http: {
            plugins: [
              { name: 'ok-plugin', condition: { match: ok }, path: { addPrefix: '/x' } },
              { name: 'block-admin', condition: { match: 'ctx.request.http.path.startsWith(' }, direct: { statusCode: 403 } },
            ],
          },
        },
        dynamicConfig: {
          configs: [{ name: 'v2', upstream: { url: 'https://v2.example.com' }, http: { plugins: [{ name: 'dp', condition: { any: { of: [{ match: ok }, { match: 'true ||' }] } }, path: { addPrefix: '/y' } }] } }],
          rules: [
            { condition: { match: ok }, configName: 'v2' },
            { condition: { match: 'ctx.request.http.headers["x"] = "v2"' }, configName: 'v2' },
          ],
        },
      },
    });
    assert.deepEqual(issues.map((i) => i.path), [
      ['spec', 'config', 'http', 'plugins', 1, 'condition', 'match'],
      ['spec', 'dynamicConfig', 'rules', 1, 'condition', 'match'],
      ['spec', 'dynamicConfig', 'configs', 0, 'http', 'plugins', 0, 'condition', 'any', 'of', 1, 'match'],
    ]);
    assert.match(issues[0].message, /plugin 1 "block-admin"/);
    assert.match(issues[1].message, /dynamicConfig rule 1 "v2"/);
    assert.match(issues[2].message, /dynamicConfig config 0 "v2", plugin 0 "dp"/);
  });

  test('valid resources (including macros, has(), mixed lists) produce no issues', () => {
    assert.deepEqual(
      check({
        kind: 'Policy',
        metadata: { name: 'good' },
        spec: {
          rules: [
            { effect: 'ALLOW', condition: { match: 'ctx.user.spec.groups.exists(g, g == "dev")' } },
            { effect: 'ALLOW', condition: { match: 'has(ctx.request.http.bodyMap.params) && ctx.request.http.bodyMap.params.arguments.a in [1, 2.5]' } },
            { effect: 'DENY', condition: { none: { of: [{ match: ok }] } } },
            { effect: 'ALLOW', condition: { matchAny: true } },
          ],
        },
      }),
      [],
    );
    // Kinds without expressions.
    assert.deepEqual(check({ kind: 'Secret', metadata: { name: 's' }, spec: {}, data: { value: 'x' } }), []);
  });

  test('compiled programs are cached by expression string', () => {
    const a = compile('ctx.request.http.method == "PATCH"');
    const b = compile('ctx.request.http.method == "PATCH"');
    assert.equal(a.ok, true);
    assert.equal(a, b);
    const bad = compile('ctx.');
    assert.equal(bad.ok, false);
    assert.equal(compile('ctx.'), bad);
  });
});

describe('BUILTIN_POLICIES', () => {
  const byName = (n: string) => BUILTIN_POLICIES.find((p) => p.metadata.name === n) as Resource<{ rules: Array<{ effect: string; condition: { match: string } }> }>;

  test('allow-all and deny-all: system Policies with one `true` rule each', () => {
    assert.deepEqual(BUILTIN_POLICIES.map((p) => p.metadata.name).sort(), ['allow-all', 'deny-all']);
    for (const [name, effect] of [['allow-all', 'ALLOW'], ['deny-all', 'DENY']]) {
      const p = byName(name);
      assert.equal(p.kind, 'Policy');
      assert.equal(p.apiVersion, 'core/v1');
      assert.equal(p.metadata.isSystem, true);
      assert.equal(p.spec.rules.length, 1);
      assert.equal(p.spec.rules[0].effect, effect);
      assert.equal(p.spec.rules[0].condition.match, 'true');
    }
  });

  test('they pass schema validation and the expression check', () => {
    for (const p of BUILTIN_POLICIES) {
      const v = validateResource(JSON.parse(JSON.stringify(p)));
      assert.equal(v.ok, true, JSON.stringify(v));
      assert.deepEqual(checkExpressions(p), []);
    }
  });

  test('the shared constants cannot be modified by accident', () => {
    const p = byName('allow-all');
    assert.throws(() => {
      (p.spec.rules[0] as { effect: string }).effect = 'DENY';
    }, TypeError);
    assert.equal(p.spec.rules[0].effect, 'ALLOW');
  });
});
