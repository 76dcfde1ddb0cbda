import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from './context.js';

/** JSON-RPC error codes: the spec's own where one fits, else the -32000 "server error" range. */
function jsonRpcCode(e: OcteliumError): number {
  if (e.code === 'OCT_ERR_INVALID_JSON') return -32700;
  return -32000 - (e.httpStatus % 100) - (e.httpStatus >= 500 ? 50 : 0);
}

/**
 * Writes a gateway error: HTTP status from the error, `WWW-Authenticate` on 401, and a JSON-RPC error
 * object carrying the request's `id` when the request was JSON-RPC (design.md §5); plain JSON otherwise.
 */
export function renderGatewayError(ctx: GatewayContext, err: OcteliumError, extraHeaders: Record<string, string> = {}): void {
  ctx.error = err;
  const { res } = ctx;
  if (ctx.responded || res.headersSent) {
    // Mid-stream failure: the status line is gone, so the only honest signal left is to cut the stream. The
    // AccessLog keeps the status the client got (as Envoy's does); its `error` says the body was cut.
    ctx.responseStatus ||= err.httpStatus;
    res.destroy();
    return;
  }
  ctx.responseStatus = err.httpStatus;
  ctx.responded = true;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store', ...extraHeaders };
  if (err.httpStatus === 401) headers['www-authenticate'] ??= 'Bearer realm="octelium"';
  // The rest of an over-size body is not worth reading: close instead of draining it for keep-alive.
  if (err.httpStatus === 413) headers.connection = 'close';
  const body = ctx.jsonRpcId !== undefined
    ? { jsonrpc: '2.0', id: ctx.jsonRpcId, error: { code: jsonRpcCode(err), message: err.message, data: { code: err.code, httpStatus: err.httpStatus } } }
    : err.toJSON();
  const text = JSON.stringify(body);
  headers['content-length'] = String(Buffer.byteLength(text));
  ctx.responseContentType = 'application/json';
  ctx.responseBytes = Buffer.byteLength(text);
  res.writeHead(err.httpStatus, headers);
  res.end(text);
}

/** Extracts a JSON-RPC id from a body, if it is a JSON-RPC request (or a batch: the first id). */
export function jsonRpcIdOf(bodyMap: unknown): string | number | null | undefined {
  const msg = Array.isArray(bodyMap) ? bodyMap[0] : bodyMap;
  if (msg && typeof msg === 'object' && (msg as { jsonrpc?: unknown }).jsonrpc === '2.0' && 'id' in msg) {
    const id = (msg as { id: unknown }).id;
    if (typeof id === 'string' || typeof id === 'number' || id === null) return id;
  }
  return undefined;
}

export { OcteliumError };
