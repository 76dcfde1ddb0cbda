import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { API_PREFIX, OcteliumError } from '@octelium-ts/shared';
import { sendError } from '../api/http-util.js';
import { parseRequestTarget } from './request-target.js';
import { writeRawError } from './render-error.js';
import type { Faults } from './faults.js';
import type { ListenerLimits } from './limits.js';

export interface Handlers {
  api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  oauth2(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  gateway(req: IncomingMessage, res: ServerResponse, target: { service: string; namespace: string; path: string }): Promise<void>;
  connectUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Human login and the portal (`/login…`, `/callback`, `/logout`, `/portal…`; design.md §7). */
  web?: { owns(path: string): boolean; handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> };
  /** More cluster-host routes by exact path (e.g. `/metrics`), registered by subsystems. */
  routes?: Map<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>>;
}

/** What Node's HTTP parser reports (`clientError`) as the status the client gets. */
function parserError(err: NodeJS.ErrnoException): OcteliumError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new OcteliumError('HEADERS_TOO_LARGE', 'request headers too large');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new OcteliumError('REQUEST_TIMEOUT', 'the request did not arrive in time');
    default:
      // TE+CL, duplicate Content-Length, obs-fold, bad chunk sizes, invalid characters …: llhttp is strict (RFC 9112).
      return new OcteliumError('INVALID_ARGUMENT', `malformed HTTP request (${err.code ?? 'parse error'})`);
  }
}

/**
 * The one listener: cluster host (API, OAuth2, no-DNS Services) and `<svc>.<domain>` hosts (design.md §2).
 * Every entry point (request, upgrade, parser error) catches its own errors: nothing a client sends can end
 * the process (docs/security.md).
 */
export function createHttpServer(domainHost: () => string, h: Handlers, limits: ListenerLimits, faults: Faults): Server {
  function unexpected(where: string, err: unknown, res: ServerResponse): void {
    const requestId = randomUUID();
    faults.record(where, err, requestId);
    if (res.headersSent) return void res.destroy();
    sendError(res, new OcteliumError('INTERNAL', 'internal error', { requestId }));
  }

  /** Limits the parser does not enforce itself; throws the 4xx to answer. */
  function checkLimits(req: IncomingMessage): void {
    if ((req.url ?? '').length > limits.maxUrlBytes) throw new OcteliumError('URI_TOO_LONG', `request target longer than ${limits.maxUrlBytes} bytes`);
    // maxHeadersCount is set one above the limit, so a longer list shows up here instead of being cut silently.
    if (req.rawHeaders.length / 2 > limits.maxHeaderCount) throw new OcteliumError('HEADERS_TOO_LARGE', `more than ${limits.maxHeaderCount} request header fields`);
  }

  function dispatch(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    checkLimits(req);
    const target = parseRequestTarget(req.method ?? 'GET', req.url ?? '/', req.headers.host, domainHost());
    if (target.kind === 'service') return h.gateway(req, res, target);
    if (target.path === '*') {
      res.writeHead(204, { allow: 'GET, HEAD, POST, PUT, DELETE, OPTIONS' });
      return void res.end();
    }
    // Built only from the normalised path, which starts with exactly one "/": this cannot throw nor change host.
    const url = new URL(target.path + target.query, 'http://cluster.invalid');
    if (url.pathname === API_PREFIX || url.pathname.startsWith(API_PREFIX + '/')) return h.api(req, res, url);
    if (url.pathname.startsWith('/oauth2/') || url.pathname.startsWith('/.well-known/')) return h.oauth2(req, res, url);
    if (h.web?.owns(url.pathname)) return h.web.handle(req, res, url);
    const extra = h.routes?.get(url.pathname);
    if (extra) return Promise.resolve(extra(req, res, url)).catch((err) => sendError(res, err));
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"status":"ok"}');
    }
    sendError(res, new OcteliumError('NOT_FOUND', `nothing at ${url.pathname}; Services are at /svc/<name>/ or http://<name>.${domainHost()}`));
  }

  const server = createServer({
    keepAliveTimeout: 65_000,
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // How often Node checks the two timeouts above; the default (30 s) would make a short timeout meaningless.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs / 4)),
  }, (req, res) => {
    try {
      const pending = dispatch(req, res);
      if (pending) pending.catch((err: unknown) => unexpected('request handler', err, res));
    } catch (err) {
      if (err instanceof OcteliumError) return sendError(res, err, { connection: 'close' });
      unexpected('request listener', err, res);
    }
  });
  server.maxHeadersCount = limits.maxHeaderCount + 1;

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return void socket.destroy();
    writeRawError(socket, parserError(err));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Before anything can await: a peer that resets an upgraded socket must not raise an unhandled 'error'.
    socket.on('error', () => socket.destroy());
    try {
      checkLimits(req);
      const target = parseRequestTarget(req.method ?? 'GET', req.url ?? '/', req.headers.host, domainHost());
      if (target.kind === 'cluster' && target.path === `${API_PREFIX}/connect` && h.connectUpgrade) return h.connectUpgrade(req, socket, head);
      writeRawError(socket, new OcteliumError('NOT_FOUND', 'no WebSocket endpoint here'));
    } catch (err) {
      if (err instanceof OcteliumError) return writeRawError(socket, err);
      faults.record('upgrade', err);
      writeRawError(socket, new OcteliumError('INTERNAL', 'internal error'));
    }
  });
  return server;
}
