import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { OcteliumError } from '@octelium-ts/shared';

/**
 * The one error renderer of the cluster: every HTTP error it answers (gateway, MCP, API, listener, parser errors,
 * upgrades) is laid out here — status from the taxonomy (shared/errors.ts), a JSON-RPC error body carrying the
 * request's id when the request was JSON-RPC (design.md §5), `WWW-Authenticate` on 401, `connection: close` on 413.
 * OAuth endpoints answer in RFC 6749's own error shape (oauth/errors.ts), as the spec requires.
 */
export interface RenderedError { status: number; headers: Record<string, string>; text: string }

export function renderError(err: OcteliumError, opts: { jsonRpcId?: string | number | null; headers?: Record<string, string> } = {}): RenderedError {
  const text = JSON.stringify(err.body(opts.jsonRpcId));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store', ...opts.headers };
  if (err.httpStatus === 401) headers['www-authenticate'] ??= 'Bearer realm="octelium"';
  // The rest of an over-size body is not worth reading: close instead of draining it for keep-alive.
  if (err.httpStatus === 413) headers.connection = 'close';
  headers['content-length'] = String(Buffer.byteLength(text));
  return { status: err.httpStatus, headers, text };
}

/** Writes `err` on a response whose head is not sent yet; returns the body's size. */
export function writeError(res: ServerResponse, err: OcteliumError, opts: Parameters<typeof renderError>[1] = {}): number {
  const r = renderError(err, opts);
  res.writeHead(r.status, r.headers);
  res.end(r.text);
  return r.text.length;
}

const REASON: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 413: 'Payload Too Large', 414: 'URI Too Long', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** The same answer as raw bytes, for sockets that have no ServerResponse (parser errors, refused upgrades). */
export function rawErrorResponse(err: OcteliumError, headers: Record<string, string> = {}): string {
  const r = renderError(err, { headers: { ...headers, connection: 'close' } });
  return `HTTP/1.1 ${r.status} ${REASON[r.status] ?? 'Error'}\r\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${r.text}`;
}

/** An error answer written straight to a socket (parser errors, refused upgrades): JSON body, then close. */
export function writeRawError(socket: Duplex, err: OcteliumError): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  socket.end(rawErrorResponse(err));
  // A client that never reads must not keep the socket.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Anything thrown that is not an OcteliumError is an internal error: the client learns nothing about it. */
export function asOcteliumError(err: unknown): OcteliumError {
  return err instanceof OcteliumError ? err : new OcteliumError('INTERNAL', 'internal error');
}
