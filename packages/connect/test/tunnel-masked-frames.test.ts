/**
 * The agent's DATA frames built and masked in one pass (maskedTunnelFrame with bufferutil's native mask, written to
 * ws's socket) against a real `ws` server, which refuses any client frame that is not masked (RFC 6455 §5.1): bodies
 * of every size arrive intact, interleaved with ws's own frames (pings) and the transport's control frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { TunnelMux, WebSocketTransport, type RequestHead, type TunnelStream } from '@octelium-ts/shared';
import { nativeMask } from '../src/agent/native-mask.js';

const head: RequestHead = { kind: 'publish', service: 'svc', method: 'POST', path: '/', headers: {}, hasBody: true };

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function readAll(s: TunnelStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s.readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('bufferutil\'s native mask is found (else the agent falls back to ws framing every frame)', () => {
  assert.equal(typeof nativeMask(), 'function');
});

test('one-pass masked DATA frames reach a ws server intact: bodies of every size, both write paths, pings between', async () => {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const received: Buffer[] = [];
  const serverErrors: Error[] = [];
  let hubMux!: TunnelMux;
  const hubReady = new Promise<void>((resolve) => {
    server.on('upgrade', (req, socket, headBuf) => {
      wss.handleUpgrade(req, socket, headBuf, (ws) => {
        ws.on('error', (e) => serverErrors.push(e));
        hubMux = new TunnelMux(new WebSocketTransport(ws), { role: 'server' });
        hubMux.onerror = (e) => serverErrors.push(e);
        hubMux.onstream = async (s) => {
          const body = await readAll(s);
          received.push(body);
          s.respond({ status: 200, headers: {} });
          s.writable.end(String(body.length));
        };
        resolve();
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { perMessageDeflate: false });
  const native = nativeMask()!;
  let maskCalls = 0;
  const mask: typeof native = (...args) => {
    maskCalls++;
    native(...args);
  };
  const transport = new WebSocketTransport(ws, { mask, heartbeatIntervalMs: 5 });
  const agent = new TunnelMux(transport, { role: 'client' });
  try {
    await agent.start();
    await hubReady;
    const sizes = [0, 1, 47, 48, 116, 117, 1000, 65_527, 65_536, 300_000, 3 * 1024 * 1024 + 5];
    for (const [i, n] of sizes.entries()) {
      const body = pattern(n, i);
      const s = agent.openStream(head);
      if (i % 2) {
        s.writable.end(body); // through the Writable
      } else {
        // through writeChunk, in pieces of up to 64 KiB as undici hands them over
        for (let off = 0; off < n; off += 64 * 1024) {
          if (!s.writeChunk(body.subarray(off, off + 64 * 1024))) await new Promise<void>((r) => (s.onwritable = r));
        }
        s.endChunks();
      }
      const res = await s.responseHead;
      assert.equal(res.status, 200);
      assert.equal((await readAll(s)).toString(), String(n));
      assert.deepEqual(received[i], body, `body ${i} of ${n} bytes`);
    }
    assert.deepEqual(serverErrors, [], 'the server saw only valid, masked frames');
    assert.ok(maskCalls > 50, `the DATA frames took the one-pass path (${maskCalls} native mask calls)`);
    assert.equal(agent.closed, false);
  } finally {
    agent.close();
    wss.close();
    server.close();
  }
});
