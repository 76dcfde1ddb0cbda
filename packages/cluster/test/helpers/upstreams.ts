import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestUpstream { url: string; server: Server; requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>; close(): Promise<void> }

/** A plain HTTP upstream on 127.0.0.1:0 that records every request and answers with `handler`. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>): Promise<TestUpstream> {
  const requests: TestUpstream['requests'] = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    await handler(req, res, body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
