/**
 * maskedTunnelFrame: one tunnel frame as one masked WebSocket frame (RFC 6455 §5.2), decoded here by the RFC's rules
 * and compared with encodeFrame's bytes, at every payload-length boundary of the WebSocket header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_HEADER_BYTES, FrameType, encodeFrame, maskedTunnelFrame, type MaskFunction } from '../src/tunnel/index.js';

/** The RFC's XOR, byte by byte (what bufferutil does natively). */
const jsMask: MaskFunction = (source, mask, output, offset, length) => {
  for (let i = 0; i < length; i++) output[offset + i] = source[i] ^ mask[i & 3];
};

function decodeWebSocketFrame(buf: Buffer): { fin: boolean; opcode: number; key: Buffer; message: Buffer } {
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  assert.equal(buf[0] & 0x70, 0, 'no RSV bits');
  assert.ok(buf[1] & 0x80, 'MASK bit set');
  let len = buf[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    len = buf.readUInt16BE(2);
    at = 4;
    assert.ok(len >= 126, 'the shortest length encoding (RFC 6455 §5.2)');
  } else if (len === 127) {
    len = buf.readUInt32BE(2) * 2 ** 32 + buf.readUInt32BE(6);
    at = 10;
    assert.ok(len >= 65536, 'the shortest length encoding (RFC 6455 §5.2)');
  }
  const key = buf.subarray(at, at + 4);
  const masked = buf.subarray(at + 4);
  assert.equal(masked.length, len, 'the length field covers exactly the rest');
  const message = Buffer.alloc(len);
  for (let i = 0; i < len; i++) message[i] = masked[i] ^ key[i & 3];
  return { fin, opcode, key: Buffer.from(key), message };
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + 7) & 0xff;
  return b;
}

test('every length boundary: the unmasked message is exactly encodeFrame\'s tunnel frame, binary and final', () => {
  const sizes = [0, 1, 3, 47, 48, 49, 125 - FRAME_HEADER_BYTES, 126 - FRAME_HEADER_BYTES, 1000, 65535 - FRAME_HEADER_BYTES, 65536 - FRAME_HEADER_BYTES, 64 * 1024, 200_001];
  for (const n of sizes) {
    const payload = pattern(n);
    for (const [type, id] of [[FrameType.DATA, 1], [FrameType.DATA, 0xfffffffe], [FrameType.END, 12345]] as const) {
      const ws = decodeWebSocketFrame(maskedTunnelFrame(type, id, payload, jsMask));
      assert.equal(ws.fin, true);
      assert.equal(ws.opcode, 2, 'binary');
      assert.deepEqual(ws.message, encodeFrame(type, id, payload), `payload of ${n} bytes, stream ${id}`);
    }
  }
});

test('the payload is masked from where it is: the source buffer is left untouched', () => {
  const payload = pattern(4096);
  const copy = Buffer.from(payload);
  maskedTunnelFrame(FrameType.DATA, 3, payload, jsMask);
  assert.deepEqual(payload, copy);
});

test('a fresh masking key for every frame (RFC 6455 §5.3), also across refills of the key pool', () => {
  const seen = new Set<string>();
  const N = 5000; // more keys than one pool holds (2048)
  let zeroKeys = 0;
  for (let i = 0; i < N; i++) {
    const { key } = decodeWebSocketFrame(maskedTunnelFrame(FrameType.DATA, 1, Buffer.alloc(0), jsMask));
    seen.add(key.toString('hex'));
    if (key.readUInt32BE(0) === 0) zeroKeys++;
  }
  // 5000 draws from 2^32 keys: a repeat is possible but rare (p ≈ 0.3 %); tolerate one.
  assert.ok(seen.size >= N - 1, `${N - seen.size} repeated keys`);
  assert.ok(zeroKeys <= 1, 'not a constant zero key');
});
