/**
 * The benchmark upstream, run as its own process: a plain node:http JSON-RPC server that answers MCP
 * `tools/call add` — deliberately minimal, so that the proxy under test (not the MCP SDK's per-request
 * transport machinery) is what the numbers show. Optionally the MCP SDK demo server as well (`--sdk`).
 *
 *   POST /mcp            → JSON response     {"jsonrpc":"2.0","id":…,"result":{"content":[{"type":"text","text":"a+b"}]}}
 *   POST /mcp-sse        → SSE response      one `event: message` carrying the same JSON-RPC response, then end
 *   GET  (accept SSE)    → idle SSE stream   a priming event at once, then nothing until the client leaves
 *   GET  /big?bytes=N    → N bytes of application/octet-stream, streamed in 64 KiB chunks (chunked encoding, no
 *                          content-length), written as fast as the reader drains them (bench/tunnel.ts MB/s)
 *
 * Usage (as a child): node --import tsx bench/lib/upstream-server.ts [--ports N] [--sdk]
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sendReady, serveIpc } from './ipc.js';

const args = process.argv.slice(2);
const portCount = Number(args[args.indexOf('--ports') + 1] || 1) || 1;
const withSdk = args.includes('--sdk');

let requests = 0;
let openStreams = 0;
let streamsOpened = 0;

function answer(raw: string): string {
  let msg: { id?: unknown; method?: string; params?: { name?: string; arguments?: { a?: number; b?: number } } };
  try {
    msg = JSON.parse(raw);
  } catch {
    return JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
  }
  if (msg.method === 'tools/call') {
    const a = Number(msg.params?.arguments?.a ?? 0);
    const b = Number(msg.params?.arguments?.b ?? 0);
    const text = msg.params?.name === 'subtract' ? String(a - b) : String(a + b);
    return JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: { content: [{ type: 'text', text }] } });
  }
  return JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: {} });
}

const BIG_CHUNK = Buffer.alloc(64 * 1024, 'x');

/** GET /big?bytes=N: a streamed bulk response, honouring backpressure. */
function big(req: IncomingMessage, res: ServerResponse): void {
  const bytes = Math.max(0, Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes') ?? 10 * 1024 * 1024) || 0);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
  req.resume();
  let left = bytes;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, BIG_CHUNK.length);
      left -= n;
      if (!res.write(n === BIG_CHUNK.length ? BIG_CHUNK : BIG_CHUNK.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.once('close', () => res.off('drain', pump));
  pump();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  if (req.method === 'GET' && req.url?.startsWith('/big')) return big(req, res);
  if (req.method === 'GET') {
    // An idle MCP stream (GET /mcp): priming event now, then silence; ends when the client goes away.
    openStreams++;
    streamsOpened++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(`id: ${streamsOpened}\nevent: ready\ndata: {}\n\n`);
    res.once('close', () => openStreams--);
    req.resume();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = answer(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    if (req.url?.startsWith('/mcp-sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(`event: message\ndata: ${body}\n\n`);
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }
  });
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', 4096, r));
  return (server.address() as AddressInfo).port;
}

const servers: Server[] = [];
const ports: number[] = [];
for (let i = 0; i < portCount; i++) {
  const s = createServer({ keepAliveTimeout: 120_000, requestTimeout: 0, headersTimeout: 60_000 }, handle);
  s.maxRequestsPerSocket = 0;
  servers.push(s);
  ports.push(await listen(s));
}

let sdkPort: number | undefined;
if (withSdk) {
  const { startDemoMcpServer } = await import('@octelium-ts/cluster/testing');
  sdkPort = (await startDemoMcpServer({ jsonResponse: true })).port;
}

serveIpc({
  stats: () => ({ requests, openStreams, streamsOpened }),
});
sendReady({ ports, sdkPort });
