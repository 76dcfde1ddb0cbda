import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedMap } from '../src/bounded-map.js';

test('BoundedMap: keeps at most max entries, starting over when a new key would pass it; updating a key never clears', () => {
  const m = new BoundedMap<string, number>(3);
  for (const [k, v] of [['a', 1], ['b', 2], ['c', 3]] as const) m.set(k, v);
  m.set('b', 20);
  assert.equal(m.size, 3, 'an existing key is updated in place');
  assert.equal(m.get('b'), 20);
  m.set('d', 4);
  assert.deepEqual([...m], [['d', 4]], 'the fourth key starts it over');
  for (let i = 0; i < 1000; i++) m.set(`k${i}`, i);
  assert.ok(m.size <= 3);
  assert.equal(m.get('k999'), 999, 'the newest entry is always there');
});
