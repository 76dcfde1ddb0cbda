import { JsonBodyError, OcteliumError, parseJsonBytes } from '@octelium-ts/shared';
import type { GatewayContext } from '../context.js';
import { jsonRpcIdOf } from '../errors.js';

export const DEFAULT_MAX_REQUEST_SIZE = 1024 * 1024;

/** Reads at most `limit` bytes; past it, stops reading and fails with 413. */
export async function readLimited(ctx: GatewayContext, limit: number): Promise<Buffer> {
  const declared = Number(ctx.req.headers['content-length'] ?? -1);
  if (declared > limit) throw new OcteliumError('BODY_TOO_LARGE', `request body of ${declared} bytes exceeds maxRequestSize ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of ctx.req) {
    size += (c as Buffer).length;
    if (size > limit) throw new OcteliumError('BODY_TOO_LARGE', `request body exceeds maxRequestSize ${limit}`);
    chunks.push(c as Buffer);
  }
  ctx.requestBytes = size;
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
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
    return parseJsonBytes(ctx.body!);
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
    ctx.body = await readLimited(ctx, SMALL_JSON);
    try {
      ctx.parsedBody = parseJsonBytes(ctx.body);
      ctx.jsonRpcId = jsonRpcIdOf(ctx.parsedBody);
    } catch {
      /* not JSON we would parse (syntax, UTF-8, depth): the Service does not buffer, so it is forwarded as opaque bytes */
    }
    return;
  }
  ctx.body = await readLimited(ctx, http.body?.maxRequestSize ?? DEFAULT_MAX_REQUEST_SIZE);
  if (http.body?.mode !== 'JSON' || ctx.body.length === 0) return;
  ctx.bodyMap = parseJsonBody(ctx);
  ctx.jsonRpcId = jsonRpcIdOf(ctx.bodyMap);
}
