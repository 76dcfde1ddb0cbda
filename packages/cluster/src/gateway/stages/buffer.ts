import { JsonBodyError, OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import { jsonRpcIdOf } from '../errors.js';

export const DEFAULT_MAX_REQUEST_SIZE = 1024 * 1024;

/** Reads the whole body into the context's RequestBody (at most `limit` bytes; past it, 413). */
export async function readLimited(ctx: GatewayContext, limit: number): Promise<Buffer> {
  const bytes = await ctx.requestBody.read(limit);
  ctx.requestBytes = bytes.length;
  return bytes;
}

/** The body's limit when a stage must hold it whole: the Service's maxRequestSize, else the default. */
export function bufferLimit(ctx: GatewayContext): number {
  return ctx.config?.http?.body?.maxRequestSize ?? DEFAULT_MAX_REQUEST_SIZE;
}

/**
 * Small JSON bodies (one MCP JSON-RPC message, typically) are read even without buffering, so that any
 * later error — 502, 504, plugin failure — can still be answered with the request's JSON-RPC id.
 */
const SMALL_JSON = 64 * 1024;

function isSmallJson(ctx: GatewayContext): boolean {
  const len = Number(ctx.req.headers['content-length'] ?? -1);
  return len >= 0 && len <= SMALL_JSON && String(ctx.req.headers['content-type'] ?? '').includes('json');
}

/** A buffered body as JSON; anything else (syntax, invalid UTF-8, nesting past MAX_JSON_DEPTH) is a 400. */
export function parseJsonBody(ctx: GatewayContext): unknown {
  try {
    return ctx.requestBody.json();
  } catch (e) {
    ctx.jsonRpcId = null; // JSON-RPC: a parse error is answered with id null
    throw new OcteliumError('INVALID_JSON', `request body is not acceptable JSON: ${e instanceof JsonBodyError ? e.message : String(e)}`);
  }
}

/** buffer: with `enableRequestBuffering`, read the body whole; with `body.mode: JSON`, parse it into bodyMap. */
export async function bufferStage(ctx: GatewayContext): Promise<void> {
  const http = ctx.config?.http;
  if (!http?.enableRequestBuffering) {
    if (!isSmallJson(ctx)) return;
    await readLimited(ctx, SMALL_JSON);
    // Not JSON we would parse (syntax, UTF-8, depth): the Service does not buffer, so it is forwarded as opaque bytes.
    ctx.jsonRpcId = jsonRpcIdOf(ctx.requestBody.parsed());
    return;
  }
  const bytes = await readLimited(ctx, bufferLimit(ctx));
  if (http.body?.mode !== 'JSON' || bytes.length === 0) return;
  ctx.requestBody.expose(parseJsonBody(ctx));
  ctx.jsonRpcId = jsonRpcIdOf(ctx.bodyMap);
}
