/**
 * Reference floor for a Node proxy: the least a Node.js L7 proxy does per request — node:http server, undici
 * keep-alive pool to the upstream (the gateway's own client and settings), headers copied minus hop-by-hop and
 * credentials, body streamed both ways. No routing, auth, policy, AccessLog. What the gateway costs beyond this
 * line is our pipeline; what this line costs compared to nginx is Node itself.
 *
 * Child usage: node --import tsx bench/lib/node-proxy.ts <upstreamPort> [--workers N]   → IPC `ready` {port}
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { sendReady } from './ipc.js';

const upstreamPort = Number(process.argv[2]);
const workersArg = process.argv.indexOf('--workers');
const workers = workersArg > 0 ? Number(process.argv[workersArg + 1]) : 1;
// --unlimited: no cap on upstream connections per origin (for holding thousands of SSE streams).
const unlimited = process.argv.includes('--unlimited');
const DROP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'authorization', 'cookie', 'x-octelium-auth']);

function serve(port: number, onListening: (port: number) => void): void {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: unlimited ? null : 256, pipelining: 1 });
  const origin = `http://127.0.0.1:${upstreamPort}`;
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, async (req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !DROP.has(k)) headers[k] = v;
    try {
      const r = await agent.request({ origin, path: req.url!, method: req.method as 'POST', headers, body: req.method === 'GET' ? undefined : req, bodyTimeout: 0 });
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && !DROP.has(k)) out[k] = v;
      res.writeHead(r.statusCode, out);
      if (String(out['content-type'] ?? '').startsWith('text/event-stream')) res.flushHeaders();
      for await (const chunk of r.body) res.write(chunk);
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  });
  server.listen(port, '127.0.0.1', 4096, () => onListening((server.address() as AddressInfo).port));
}

if (workers > 1 && cluster.isPrimary) {
  // Workers share one listening socket (round-robin by the primary).
  const { freePort } = await import('./util.js');
  const port = await freePort();
  let up = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork({ OCT_BENCH_PROXY_PORT: String(port) }).on('message', () => {
      if (++up === workers) sendReady({ port });
    });
  }
} else if (cluster.isWorker) {
  serve(Number(process.env.OCT_BENCH_PROXY_PORT), () => process.send?.('listening'));
} else {
  serve(0, (port) => sendReady({ port }));
}
