import type { OcteliumError } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';

export type JsonRpcId = string | number | null;

export interface JsonRpcMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: unknown;
}

/** MCP / JSON-RPC error codes the gateway answers with (mcp-spec.md §4.1). */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  INVALID_PARAMS: -32602,
  /** Legacy (≤ 2025-11-25) resource-not-found. */
  RESOURCE_NOT_FOUND: -32002,
  /** 2026-07-28: a mirror header disagrees with the body. */
  HEADER_MISMATCH: -32020,
} as const;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function asMessage(v: unknown): JsonRpcMessage | undefined {
  return isObject(v) ? (v as JsonRpcMessage) : undefined;
}

/** Request ids are compared across JSON round trips; a string key keeps 1 and "1" apart. */
export function idKey(id: unknown): string | undefined {
  if (typeof id === 'number') return `n:${id}`;
  if (typeof id === 'string') return `s:${id}`;
  return undefined;
}

export function rpcIdOf(m: JsonRpcMessage | undefined): JsonRpcId {
  const id = m?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

/**
 * Answers a request from the gateway itself with a JSON-RPC error (the spec's own codes, e.g. -32020 or
 * -32602), recording `err` for the AccessLog. HTTP 200 is used when the answer is a protocol-level "no such
 * thing" that must look exactly like the upstream's own.
 */
export function respondRpcError(ctx: GatewayContext, httpStatus: number, id: JsonRpcId, code: number, message: string, err: OcteliumError, data?: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } });
  ctx.error = err;
  ctx.responded = true;
  ctx.responseStatus = httpStatus;
  ctx.responseBytes = Buffer.byteLength(text);
  ctx.responseContentType = 'application/json';
  ctx.res.writeHead(httpStatus, { ...headers, 'content-type': 'application/json', 'content-length': String(ctx.responseBytes), 'cache-control': 'no-store' });
  ctx.res.end(text);
}
