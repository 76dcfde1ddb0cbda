import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatComparison, runComparison } from './fixtures/mcp/conformance-harness.js';

/*
 * The official MCP conformance suite (0.1.16, every 2025-11-25 server scenario) against the SDK fixture server,
 * directly and through the gateway. ~20 s; needs Node 22 from `npx -y node@22` (or NODE22=/path/to/node).
 * scripts/conformance.sh runs the same comparison standalone.
 */
test('conformance: the gateway passes exactly what the server passes directly (anonymous and authenticated)', { timeout: 180_000 }, async () => {
  const c = await runComparison();
  console.log(formatComparison(c));
  assert.equal(c.direct.passed, c.direct.total, 'the fixture passes every scenario directly');
  assert.ok(c.direct.total >= 30, `expected the full 2025-11-25 scenario set, got ${c.direct.total}`);
  for (const g of [c.anonymous, c.authenticated]) {
    assert.equal(g.total, c.direct.total, `${g.label}: same scenarios`);
    assert.equal(g.passed, c.direct.passed, `${g.label}: scenarios passed`);
    assert.equal(g.checksPassed, c.direct.checksPassed, `${g.label}: checks passed`);
    assert.equal(g.checksFailed, c.direct.checksFailed, `${g.label}: checks failed`);
  }
});
