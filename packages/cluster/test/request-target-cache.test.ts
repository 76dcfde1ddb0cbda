import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OcteliumError } from '@octelium-ts/shared';
import { parseRequestTarget } from '../src/server/request-target.js';

// parseRequestTarget remembers accepted targets; a remembered answer must be the same one, shared and unchangeable.
test('a repeated request target gets the same frozen answer; a refused one is refused every time', () => {
  const first = parseRequestTarget('POST', '/svc/api/x/../mcp?a=1', 'localhost:8080', 'localhost');
  const again = parseRequestTarget('GET', '/svc/api/x/../mcp?a=1', 'localhost:8080', 'localhost');
  assert.deepEqual(first, { kind: 'service', service: 'api', namespace: 'default', path: '/mcp?a=1' });
  assert.equal(again, first);
  assert.ok(Object.isFrozen(first));
  // The host is part of the answer: the same path on a Service host is that Service's.
  assert.deepEqual(parseRequestTarget('GET', '/mcp', 'other.localhost', 'localhost'), { kind: 'service', service: 'other', namespace: 'default', path: '/mcp' });
  assert.deepEqual(parseRequestTarget('GET', '/mcp', 'localhost', 'localhost'), { kind: 'cluster', path: '/mcp', query: '' });
  for (let i = 0; i < 2; i++) assert.throws(() => parseRequestTarget('GET', '/svc/api/../../etc', 'localhost', 'localhost'), OcteliumError);
  // `*` depends on the method, so it is never answered from memory.
  assert.deepEqual(parseRequestTarget('OPTIONS', '*', 'localhost', 'localhost'), { kind: 'cluster', path: '*', query: '' });
  assert.throws(() => parseRequestTarget('GET', '*', 'localhost', 'localhost'), OcteliumError);
  // Many distinct targets: still right after the memory starts over.
  for (let i = 0; i < 2000; i++) assert.equal(parseRequestTarget('GET', `/svc/api/p${i}`, 'localhost', 'localhost').path, `/p${i}`);
  assert.equal(parseRequestTarget('GET', '/svc/api/x/../mcp?a=1', 'localhost:8080', 'localhost').path, '/mcp?a=1');
  // A long target is answered right, frozen, but parsed each time rather than kept.
  const long = `/svc/api/${'a'.repeat(3000)}`;
  const l1 = parseRequestTarget('GET', long, 'localhost', 'localhost');
  assert.equal(l1.kind === 'service' && l1.path, `/${'a'.repeat(3000)}`);
  assert.ok(Object.isFrozen(l1));
  assert.notEqual(parseRequestTarget('GET', long, 'localhost', 'localhost'), l1);
});
