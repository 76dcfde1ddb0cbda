import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mapSseEvents, withData } from '../src/mcp/sse.js';
import { decodeMirrorHeader, eraOf, headerMismatch } from '../src/mcp/protocol.js';

async function* chunks(parts: Array<string | Buffer | number>): AsyncGenerator<Buffer> {
  for (const p of parts) {
    if (typeof p === 'number') await new Promise((r) => setTimeout(r, p));
    else yield Buffer.isBuffer(p) ? p : Buffer.from(p);
  }
}

async function collect(it: AsyncIterable<Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const c of it) out.push(c.toString('utf8'));
  return out;
}

describe('SSE event mapping', () => {
  test('events split across chunks (and a UTF-8 character split in two) come out whole, one write per event', async () => {
    const euro = Buffer.from('data: €\n\n');
    const out = await collect(mapSseEvents(chunks(['id: 1\nda', 'ta: {"a":1}\n', '\nid: 2\n', euro.subarray(0, 8), euro.subarray(8)]), undefined, 0));
    assert.deepEqual(out, ['id: 1\ndata: {"a":1}\n\n', 'id: 2\ndata: €\n\n']);
  });

  test('CRLF and CR line ends are event boundaries too; a trailing partial event is flushed at the end', async () => {
    const out = await collect(mapSseEvents(chunks(['data: a\r\n\r\ndata: b\r\r', 'data: c']), undefined, 0));
    assert.deepEqual(out, ['data: a\r\n\r\n', 'data: b\r\r', 'data: c']);
  });

  test('a rewritten event keeps event/id/retry lines and gets one data line; multi-line data is joined', async () => {
    const seen: string[] = [];
    const out = await collect(mapSseEvents(chunks(['event: message\nid: x-7\nretry: 500\ndata: {"v":\ndata: 1}\n\n', ': comment\n\n']), (ev) => {
      seen.push(ev.data ?? '<none>');
      return ev.data ? withData(ev.raw, JSON.stringify({ v: 2 })) : undefined;
    }, 0));
    assert.deepEqual(seen, ['{"v":\n1}', '<none>']);
    assert.deepEqual(out, ['event: message\nid: x-7\nretry: 500\ndata: {"v":2}\n\n', ': comment\n\n']);
  });

  test('keep-alive comments only while the upstream is idle', async () => {
    const out = await collect(mapSseEvents(chunks(['data: 1\n\n', 230, 'data: 2\n\n']), undefined, 50));
    assert.equal(out[0], 'data: 1\n\n');
    assert.equal(out.at(-1), 'data: 2\n\n');
    const pings = out.slice(1, -1);
    assert.ok(pings.length >= 3 && pings.every((p) => p === ': keep-alive\n\n'), JSON.stringify(out));
  });

  test('stopping early releases the upstream body', async () => {
    let released = false;
    async function* upstream(): AsyncGenerator<Buffer> {
      try {
        yield Buffer.from('data: 1\n\n');
        await new Promise((r) => setTimeout(r, 10));
        yield Buffer.from('data: 2\n\n');
      } finally {
        released = true;
      }
    }
    for await (const c of mapSseEvents(upstream(), undefined, 0)) {
      assert.equal(c.toString(), 'data: 1\n\n');
      break;
    }
    assert.equal(released, true);
  });
});

describe('2026-07-28 header checks', () => {
  const body = (method: string, params: Record<string, unknown>) => ({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
  const h = (x: Record<string, string>) => ({ 'mcp-protocol-version': '2026-07-28', ...x });

  test('era detection', () => {
    assert.equal(eraOf({}, body('tools/list', {})).modern, true);
    assert.equal(eraOf({ 'mcp-protocol-version': '2025-11-25' }, { jsonrpc: '2.0', id: 1, method: 'initialize' }).modern, false);
    assert.equal(eraOf({}, [{ jsonrpc: '2.0' }]).version, '2025-03-26');
  });

  test('resources/read mirrors params.uri; base64-wrapped values are decoded', () => {
    const m = body('resources/read', { uri: 'file:///ü.txt' });
    assert.equal(headerMismatch(h({ 'mcp-method': 'resources/read', 'mcp-name': `=?base64?${Buffer.from('file:///ü.txt').toString('base64')}?=` }), m), undefined);
    assert.match(headerMismatch(h({ 'mcp-method': 'resources/read', 'mcp-name': 'file:///other' }), m)!, /params\.uri/);
    assert.equal(decodeMirrorHeader('plain'), 'plain');
  });

  test('methods without a name need only Mcp-Method', () => {
    assert.equal(headerMismatch(h({ 'mcp-method': 'tools/list' }), body('tools/list', {})), undefined);
    assert.match(headerMismatch(h({}), body('tools/list', {}))!, /Mcp-Method header \(missing\)/);
  });
});
