import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport, type StreamableHTTPServerTransportOptions } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface DemoServerOptions {
  host?: string;
  port?: number;
  /** true: POST answers are plain JSON; false (default): answers come as an SSE stream. */
  jsonResponse?: boolean;
  /** Observe every request as the upstream sees it (tests check headers and bodies). */
  onRequest?: (info: { method: string; url: string; headers: IncomingHttpHeaders; body: string }) => void;
}

export interface DemoServer { url: string; port: number; server: Server; close(): Promise<void> }

/** The product brief's demo MCP server: tools `add` and `subtract`, streamable HTTP at /mcp (MCP TypeScript SDK). */
export function buildDemoMcpServer(): McpServer {
  const mcp = new McpServer({ name: 'octelium-demo', version: '1.0.0' });
  mcp.registerTool('add', { description: 'Add two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: 'text', text: String(a + b) }],
  }));
  mcp.registerTool('subtract', { description: 'Subtract b from a', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: 'text', text: String(a - b) }],
  }));
  return mcp;
}

/** What a session router needs besides the SDK transport defaults. */
export interface McpSessionRouterOptions {
  /** Builds the MCP server connected to each new session's transport. */
  build(): { connect(t: StreamableHTTPServerTransport): Promise<void> };
  transport?: Omit<StreamableHTTPServerTransportOptions, 'sessionIdGenerator' | 'onsessioninitialized'>;
  /** Called with the initialize request body once a session exists (e.g. to remember the negotiated version). */
  onInitialized?(sessionId: string, body: unknown): void;
  onClosed?(sessionId: string): void;
}

/**
 * Stateful streamable-HTTP routing shared by the demo server and the conformance fixture: one SDK transport
 * per `Mcp-Session-Id`, created on initialize; an unknown session id gets 404, as the spec asks.
 */
export function mcpSessionRouter(opts: McpSessionRouterOptions) {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  return {
    sessions,
    async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
      const sid = req.headers['mcp-session-id'] as string | undefined;
      let transport = sid ? sessions.get(sid) : undefined;
      if (!transport) {
        if (sid) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
          return;
        }
        const t = new StreamableHTTPServerTransport({
          ...opts.transport,
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            sessions.set(id, t);
            opts.onInitialized?.(id, body);
          },
        });
        t.onclose = () => {
          if (!t.sessionId) return;
          sessions.delete(t.sessionId);
          opts.onClosed?.(t.sessionId);
        };
        await opts.build().connect(t);
        transport = t;
      }
      await transport.handleRequest(req, res, body);
    },
    async closeAll(): Promise<void> {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
    },
  };
}

export async function startDemoMcpServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  const router = mcpSessionRouter({ build: buildDemoMcpServer, transport: { enableJsonResponse: opts.jsonResponse ?? false } });
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    opts.onRequest?.({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: raw });
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    await router.handle(req, res, raw ? JSON.parse(raw) : undefined);
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`, port, server,
    close: async () => {
      await router.closeAll();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
