import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { OcteliumError } from '@octelium-ts/shared';

/** The Session token on a tunnel upgrade: `Authorization: Bearer` (the agent's way) or `X-Octelium-Auth`. */
export function upgradeToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  if (m) return m[1];
  const x = req.headers['x-octelium-auth'];
  return typeof x === 'string' && x.trim() ? x.trim() : undefined;
}

/** Answers an upgrade that will not become a WebSocket with a plain HTTP error and closes the socket. */
export function rejectUpgrade(socket: Duplex, err: OcteliumError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(err.toJSON());
  const reason = { 401: 'Unauthorized', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' }[err.httpStatus] ?? 'Error';
  const lines = [
    `HTTP/1.1 ${err.httpStatus} ${reason}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  if (err.httpStatus === 401) lines.push('WWW-Authenticate: Bearer realm="octelium"');
  socket.end(lines.join('\r\n') + '\r\n\r\n' + body);
  // A client that never reads must not keep the socket open.
  setTimeout(() => socket.destroy(), 1000).unref();
}
