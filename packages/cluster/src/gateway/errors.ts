import { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from './context.js';
import { renderError } from '../server/render-error.js';

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
  const r = renderError(err, { jsonRpcId: ctx.jsonRpcId, headers: extraHeaders });
  ctx.responseContentType = 'application/json';
  ctx.responseBytes = r.text.length;
  res.writeHead(r.status, r.headers);
  res.end(r.text);
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
