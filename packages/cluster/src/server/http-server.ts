import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { API_PREFIX, OcteliumError } from '@octelium-ts/shared';
import { sendError } from '../api/http-util.js';
import { routeRequest } from './route-host.js';

export interface Handlers {
  api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  oauth2(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  gateway(req: IncomingMessage, res: ServerResponse, target: { service: string; namespace: string; path: string }): Promise<void>;
  connectUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** More cluster-host routes by exact path (e.g. `/metrics`), registered by subsystems. */
  routes?: Map<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>>;
}

/** The one listener: cluster host (API, OAuth2, no-DNS Services) and `<svc>.<domain>` hosts (design.md §2). */
export function createHttpServer(domainHost: () => string, h: Handlers): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
    const rawPath = req.url ?? '/';
    const target = routeRequest(req.headers.host, rawPath, domainHost());
    if (target.kind === 'service') return void h.gateway(req, res, target);
    const url = new URL(rawPath, 'http://cluster.invalid');
    if (url.pathname === API_PREFIX || url.pathname.startsWith(API_PREFIX + '/')) return void h.api(req, res, url);
    if (url.pathname.startsWith('/oauth2/') || url.pathname.startsWith('/.well-known/')) return void h.oauth2(req, res, url);
    const extra = h.routes?.get(url.pathname);
    if (extra) return void Promise.resolve(extra(req, res, url)).catch((err) => sendError(res, err));
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"status":"ok"}');
    }
    sendError(res, new OcteliumError('NOT_FOUND', `nothing at ${url.pathname}; Services are at /svc/<name>/ or http://<name>.${domainHost()}`));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === `${API_PREFIX}/connect` && h.connectUpgrade) return h.connectUpgrade(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
  });
  return server;
}
