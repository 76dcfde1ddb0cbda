import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_HEADER_BYTES, FrameType, TunnelProtocolError, decodeFrame, decodeJSONPayload, decodeWindowIncrement,
  encodeFrame, encodeJSONFrame, encodeWindowFrame, endToEndHeaders, joinUpstreamURL, normalizeUpstreamURL,
  RequestHeadSchema, requestHasBody,
} from '../src/tunnel/index.js';

test('frames round-trip with a 9-byte header: type, stream id, length', () => {
  const f = encodeFrame(FrameType.DATA, 0xfffffffe, Buffer.from('abc'));
  assert.equal(f.length, FRAME_HEADER_BYTES + 3);
  assert.equal(f[0], FrameType.DATA);
  assert.equal(f.readUInt32BE(1), 0xfffffffe);
  assert.equal(f.readUInt32BE(5), 3);
  const d = decodeFrame(f);
  assert.equal(d.type, FrameType.DATA);
  assert.equal(d.streamId, 0xfffffffe);
  assert.equal(d.payload.toString(), 'abc');
  assert.equal(decodeWindowIncrement(decodeFrame(encodeWindowFrame(5, 70000))), 70000);
});

test('malformed frames are protocol errors', () => {
  const bad = (b: Buffer) => assert.throws(() => decodeFrame(b), TunnelProtocolError);
  bad(Buffer.alloc(4));
  bad(encodeFrame(0x7f as FrameType, 1));
  const wrongLen = encodeFrame(FrameType.DATA, 1, Buffer.from('abcd'));
  wrongLen.writeUInt32BE(9, 5);
  bad(wrongLen);
  bad(encodeFrame(FrameType.HELLO, 1)); // control frames live on stream 0
  bad(encodeFrame(FrameType.DATA, 0)); // stream frames never do
  assert.throws(() => decodeWindowIncrement(decodeFrame(encodeFrame(FrameType.WINDOW, 1, Buffer.alloc(4)))), TunnelProtocolError);
});

test('JSON heads are validated', () => {
  const ok = encodeJSONFrame(FrameType.REQUEST_HEAD, 1, { kind: 'serve', service: 's', method: 'GET', path: '/x', headers: {}, hasBody: false });
  assert.equal(decodeJSONPayload(decodeFrame(ok), RequestHeadSchema).path, '/x');
  const noSlash = encodeJSONFrame(FrameType.REQUEST_HEAD, 1, { kind: 'serve', service: 's', method: 'GET', path: 'x', headers: {}, hasBody: false });
  assert.throws(() => decodeJSONPayload(decodeFrame(noSlash), RequestHeadSchema), TunnelProtocolError);
  const notJSON = encodeFrame(FrameType.REQUEST_HEAD, 1, Buffer.from('{'));
  assert.throws(() => decodeJSONPayload(decodeFrame(notJSON), RequestHeadSchema), TunnelProtocolError);
});

test('hop-by-hop headers and Host never cross the tunnel', () => {
  const h = endToEndHeaders({
    Host: 'cluster', Connection: 'keep-alive, X-Private', 'X-Private': '1', 'Transfer-Encoding': 'chunked',
    'Content-Type': 'application/json', 'X-Multi': ['a', 'b'], 'Content-Length': 12,
  }, ['x-drop']);
  assert.deepEqual(h, { 'content-type': 'application/json', 'x-multi': ['a', 'b'], 'content-length': '12' });
  // Names differing only in case merge; `drop` is case-insensitive; a Connection header named in any case counts.
  assert.deepEqual(endToEndHeaders({ 'X-A': '1', 'x-a': ['2'], 'X-Drop': 'y', CONNECTION: 'x-b', 'X-B': 'z' }, ['X-DROP']), { 'x-a': ['1', '2'] });
  assert.equal(requestHasBody({ 'content-length': '0' }), false);
  assert.equal(requestHasBody({ 'content-length': '3' }), true);
  assert.equal(requestHasBody({ 'transfer-encoding': 'chunked' }), true);
  assert.equal(requestHasBody({}), false);
});

test('upstream URLs normalise and requests cannot escape the upstream origin', () => {
  assert.equal(normalizeUpstreamURL('http://localhost:8080/'), 'http://localhost:8080');
  assert.equal(normalizeUpstreamURL('http://LOCALHOST:80/base/'), 'http://localhost/base');
  assert.deepEqual(joinUpstreamURL('http://localhost:8080', '/mcp?x=1'), { origin: 'http://localhost:8080', path: '/mcp?x=1' });
  assert.deepEqual(joinUpstreamURL('http://localhost:8080/base/', '/mcp'), { origin: 'http://localhost:8080', path: '/base/mcp' });
  assert.deepEqual(joinUpstreamURL('http://localhost:8080', '//evil.example/x'), { origin: 'http://localhost:8080', path: '//evil.example/x' });
  // Exactly what was authorized: no dot-segment resolution, no slash merging, no re-encoding.
  for (const p of ['/a/../b', '/a/%2e%2e/b', '/a//b///c', '/a/./b', '/{x}|^', '/a%2Fb?x=../y']) {
    assert.equal(joinUpstreamURL('http://localhost:8080/base', p).path, `/base${p}`);
  }
  assert.throws(() => joinUpstreamURL('http://localhost:8080', '@evil.example/'));
  assert.throws(() => joinUpstreamURL('http://localhost:8080', '/a b'));
  assert.throws(() => normalizeUpstreamURL('file:///etc/passwd'));
});
