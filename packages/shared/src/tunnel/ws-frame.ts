import { randomFillSync } from 'node:crypto';
import { FRAME_HEADER_BYTES } from './frames.js';

/**
 * XORs `length` bytes of `source` with the 4-byte `mask` into `output` at `offset` (key index `i & 3` from the
 * source's start). The signature of `bufferutil`'s native mask, which the agent passes in; `shared` has no native
 * dependency of its own.
 */
export type MaskFunction = (source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number) => void;

/** Below this many bytes a loop here is cheaper than a call into native code (ws uses the same cut-off). */
const NATIVE_MASK_MIN = 48;

/** Masking keys come from a pool of CSPRNG bytes refilled as it runs out (as ws does): one syscall per 2048 frames. */
const KEY_POOL_BYTES = 8 * 1024;
let keyPool: Buffer | undefined;
let keyPos = KEY_POOL_BYTES;
/** The key rotated by one byte, for the payload after the 9-byte tunnel header (9 mod 4 = 1). */
const rotated = Buffer.alloc(4);

/** The size of maskedTunnelFrame's output for a payload of `payloadBytes`. */
export function maskedFrameBytes(payloadBytes: number): number {
  const n = FRAME_HEADER_BYTES + payloadBytes;
  return (n < 126 ? 2 : n < 65536 ? 4 : 10) + 4 + n;
}

/**
 * One tunnel frame as one masked, binary, final WebSocket frame (RFC 6455 §5.2), built in one buffer: the WebSocket
 * header and a fresh masking key, then the tunnel header and the payload masked straight from where they are.
 *
 * What it saves on the agent, which must mask everything it sends (§5.3): `ws` masks into a copy of whatever it is
 * given, and what it was given was itself a copy (the tunnel frame, header + payload). So each DATA payload was
 * allocated and copied twice and then written; here it is allocated and masked once (docs/performance.md, "Tunnel,
 * session 4"). The key is fresh and unpredictable for every frame, as §5.3 requires: 4 bytes of a CSPRNG pool.
 * `into`: a buffer to build it in when it is large enough (the transport's recycled frame buffers).
 */
export function maskedTunnelFrame(type: number, streamId: number, payload: Buffer, mask: MaskFunction, into?: Buffer): Buffer {
  const total = maskedFrameBytes(payload.length);
  const n = FRAME_HEADER_BYTES + payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const start = 2 + lenBytes + 4; // where the masked message begins
  const out = into && into.length >= total ? into.subarray(0, total) : Buffer.allocUnsafe(total);
  out[0] = 0x82; // FIN, opcode 2 (binary)
  if (lenBytes === 0) {
    out[1] = 0x80 | n;
  } else if (lenBytes === 2) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  if (keyPos + 4 > KEY_POOL_BYTES) {
    keyPool ??= Buffer.allocUnsafe(KEY_POOL_BYTES);
    randomFillSync(keyPool);
    keyPos = 0;
  }
  const pool = keyPool!;
  const k0 = pool[keyPos];
  const k1 = pool[keyPos + 1];
  const k2 = pool[keyPos + 2];
  const k3 = pool[keyPos + 3];
  keyPos += 4;
  out[start - 4] = k0;
  out[start - 3] = k1;
  out[start - 2] = k2;
  out[start - 1] = k3;
  // The tunnel header (frames.ts: type u8, stream id u32 BE, payload length u32 BE), masked with key bytes 0..8.
  const id = streamId >>> 0;
  const len = payload.length;
  out[start] = type ^ k0;
  out[start + 1] = (id >>> 24) ^ k1;
  out[start + 2] = ((id >>> 16) & 0xff) ^ k2;
  out[start + 3] = ((id >>> 8) & 0xff) ^ k3;
  out[start + 4] = (id & 0xff) ^ k0;
  out[start + 5] = (len >>> 24) ^ k1;
  out[start + 6] = ((len >>> 16) & 0xff) ^ k2;
  out[start + 7] = ((len >>> 8) & 0xff) ^ k3;
  out[start + 8] = (len & 0xff) ^ k0;
  // The payload continues at key index 9 = 1 (mod 4).
  const at = start + FRAME_HEADER_BYTES;
  if (len < NATIVE_MASK_MIN) {
    const k = [k1, k2, k3, k0];
    for (let i = 0; i < len; i++) out[at + i] = payload[i] ^ k[i & 3];
  } else {
    rotated[0] = k1;
    rotated[1] = k2;
    rotated[2] = k3;
    rotated[3] = k0;
    mask(payload, rotated, out, at, len);
  }
  return out;
}
