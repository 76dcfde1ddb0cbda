/**
 * The direct upstream's response path (gateway/upstream-http.ts): bodies go from undici's parser to the client's
 * socket with backpressure. What must hold: big bodies arrive whole to a slow reader without the gateway reading
 * ahead of it unboundedly, a client that leaves mid-body aborts the upstream exchange, an upstream
 * that cuts a body with a declared length is an upstream failure, and a response plugin still sees the whole body.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { request } from 'undici';
import type { AccessLog } from '@octelium-ts/shared';
import { oauth2Token, service, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

const BIG = 8 * 1024 * 1024;
const bigBody = Buffer.alloc(BIG, 'abcdefghijklmnopqrstuvwxyz0123456789');
const bigHash = createHash('sha256').update(bigBody).digest('hex');

let tc: TestCluster;
let big: TestUpstream, endless: TestUpstream, cut: TestUpstream;
let token: string;
/** Set when the endless upstream's response closed before it finished: the gateway aborted the exchange. */
let endlessAborted: Promise<void>;
/** Bytes the endless upstream managed to write before the gateway stopped reading. */
let endlessWritten = 0;

async function logsOf(svc: string): Promise<AccessLog[]> {
  tc.cluster.accessLogs.flush();
  return tc.cluster.accessLogs.query({ service: svc }, 100);
}

before(async () => {
  tc = await startTestCluster();
  big = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
    res.end(bigBody);
  });
  let abortedResolve!: () => void;
  endlessAborted = new Promise((r) => (abortedResolve = r));
  endless = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const pump = () => {
      while (!res.destroyed) {
        endlessWritten += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    res.on('close', () => !res.writableFinished && abortedResolve());
    pump();
  });
  cut = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"jsonrpc":"2.0","id":1,"result":');
    setTimeout(() => res.destroy(), 50);
  });
  await tc.api.apply({
    resources: [
      user('streamer'),
      service('big', { config: { upstream: { url: big.url } } }),
      service('endless', { config: { upstream: { url: endless.url } } }),
      service('cut', { config: { upstream: { url: cut.url } } }),
      service('big-plugin', {
        config: {
          upstream: { url: big.url },
          http: { plugins: [{ name: 'count', lua: { inline: 'function onRequest(ctx) end\nfunction onResponse(ctx)\n  octelium.resp.setResponseHeader("x-body-length", tostring(string.len(octelium.resp.getResponseBody())))\nend' } }] },
        },
      }),
      { apiVersion: 'core/v1', kind: 'Policy', metadata: { name: 'streamer-all' }, spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.user.metadata.name == "streamer"' } }] } },
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'streamer');
});

after(async () => {
  await Promise.all([big.close(), endless.close(), cut.close()]);
  await tc.close();
});

test('an 8 MB body reaches a slow reader whole, and the log counts every byte', async () => {
  const res = await request(`${tc.cluster.url}/svc/big/blob`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  const hash = createHash('sha256');
  let n = 0;
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer);
    n += (chunk as Buffer).length;
    // A slow reader: the gateway must wait for it (backpressure), not fail or drop bytes.
    if (n % (1024 * 1024) < (chunk as Buffer).length) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(n, BIG);
  assert.equal(hash.digest('hex'), bigHash);
  const log = (await logsOf('big')).at(-1)!;
  assert.equal(log.entry.info.http.response.code, 200);
  assert.equal(log.entry.info.http.response.bodyBytes, BIG);
  assert.equal(log.entry.common.error, undefined);
});

test('a client that stops reading holds the upstream back; when it leaves, the upstream exchange is aborted', async () => {
  const url = new URL(tc.cluster.url);
  const sock = connect(Number(url.port), url.hostname);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write(`GET /svc/endless/stream HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  // Read the head, then stop reading: the client's socket fills and the gateway must stop pulling from upstream.
  await new Promise<void>((r) => sock.once('data', () => r()));
  sock.pause();
  await new Promise((r) => setTimeout(r, 800));
  const stalledAt = endlessWritten;
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(endlessWritten - stalledAt <= 256 * 1024, `the upstream kept writing while the client read nothing (${endlessWritten - stalledAt} more bytes)`);
  assert.ok(endlessWritten < 64 * 1024 * 1024, `the gateway read far ahead of the client (${endlessWritten} bytes)`);
  sock.destroy();
  await Promise.race([endlessAborted, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream exchange not aborted within 5 s')), 5000))]);
  await new Promise((r) => setTimeout(r, 100));
  // The status line had gone out: the log keeps the 200 the client got, with the bytes it was sent, and no
  // upstream error (the client left; the upstream did nothing wrong).
  const log = (await logsOf('endless')).at(-1)!;
  assert.equal(log.entry.info.http.response.code, 200);
  assert.ok(log.entry.info.http.response.bodyBytes > 0 && log.entry.info.http.response.bodyBytes <= endlessWritten);
  assert.equal(log.entry.common.error, undefined);
});

test('an upstream that cuts a body with a declared length is an upstream failure in the AccessLog', async () => {
  const res = await request(`${tc.cluster.url}/svc/cut/mcp`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  await assert.rejects(res.body.text());
  await new Promise((r) => setTimeout(r, 100));
  const log = (await logsOf('cut')).at(-1)!;
  assert.equal(log.entry.common.error?.code, 'OCT_ERR_UPSTREAM_FAILED');
  assert.match(log.entry.common.error!.message, /ended early after \d+ bytes/);
});

test('a response plugin still reads the whole body (the stream is made for it)', async () => {
  const res = await request(`${tc.cluster.url}/svc/big-plugin/blob`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-body-length'], String(BIG));
  const body = Buffer.from(await res.body.arrayBuffer());
  assert.equal(createHash('sha256').update(body).digest('hex'), bigHash);
});
