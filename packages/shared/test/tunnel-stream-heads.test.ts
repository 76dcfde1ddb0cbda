import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import {
  FrameType, RequestHeadSchema, ResetSchema, ResponseHeadSchema, TunnelProtocolError, decodeFrame, decodeJSONPayload,
  decodeRequestHead, decodeReset, decodeResponseHead, encodeFrame, type Frame,
} from '../src/tunnel/index.js';

// The hand-written decoders must accept and return exactly what the zod schemas do (they replaced them per stream).
function sameAsSchema<T>(type: FrameType, decode: (f: Frame) => T, schema: z.ZodType<T>, payload: unknown): void {
  const frame = decodeFrame(encodeFrame(type, 1, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload))));
  let expected: T | 'invalid';
  try {
    expected = decodeJSONPayload(frame, schema);
  } catch (err) {
    assert.ok(err instanceof TunnelProtocolError);
    expected = 'invalid';
  }
  if (expected === 'invalid') assert.throws(() => decode(frame), TunnelProtocolError, JSON.stringify(payload));
  else assert.deepEqual(decode(frame), expected, JSON.stringify(payload));
}

const head = { kind: 'serve', service: 's', upstreamURL: 'http://u', method: 'POST', path: '/mcp', headers: { a: '1', b: ['x', 'y'] }, hasBody: true };

test('REQUEST_HEAD: the decoder agrees with RequestHeadSchema, valid and invalid', () => {
  const cases: unknown[] = [
    head, { ...head, kind: 'publish' }, { ...head, upstreamURL: undefined }, { ...head, extra: { nested: true } },
    { ...head, kind: 'other' }, { ...head, service: '' }, { ...head, service: 1 }, { ...head, upstreamURL: 5 },
    { ...head, method: 'GE T' }, { ...head, method: '' }, { ...head, path: 'x' }, { ...head, path: 3 }, { ...head, hasBody: 'yes' },
    { ...head, headers: [] }, { ...head, headers: null }, { ...head, headers: { a: 1 } }, { ...head, headers: { a: ['x', 2] } },
    { ...head, headers: undefined }, [], null, 'not json', '"a string"',
  ];
  for (const c of cases) sameAsSchema(FrameType.REQUEST_HEAD, decodeRequestHead, RequestHeadSchema, c);
});

test('RESPONSE_HEAD and RESET: the decoders agree with their schemas', () => {
  for (const c of [
    { status: 200, headers: {} }, { status: 999, headers: { x: ['1'] }, more: 1 }, { status: 99, headers: {} }, { status: 1000, headers: {} },
    { status: 200.5, headers: {} }, { status: '200', headers: {} }, { status: 200 }, {},
  ]) sameAsSchema(FrameType.RESPONSE_HEAD, decodeResponseHead, ResponseHeadSchema, c);
  for (const c of [{ code: 'CANCEL' }, { code: 'CANCEL', reason: 'r' }, { code: 'X', reason: 'r', extra: 1 }, { code: 1 }, { reason: 'r' }, { code: 'C', reason: 2 }]) {
    sameAsSchema(FrameType.RESET, decodeReset, ResetSchema, c);
  }
});

test('a header named __proto__ is refused, not assigned as the map prototype', () => {
  const frame = decodeFrame(encodeFrame(FrameType.RESPONSE_HEAD, 1, Buffer.from('{"status":200,"headers":{"__proto__":"x"}}')));
  assert.throws(() => decodeResponseHead(frame), TunnelProtocolError);
});
