import type { GatewayContext } from '../gateway/context.js';

/** What the MCP stages learned about one request, for the error-header hook that runs later. */
export interface McpRequestState {
  /** The Origin passed the Service's check (so error responses may carry CORS headers). */
  originOk: boolean;
  /** RFC 6750 §3.1 error for the challenge: a token was refused, or lacks scope. */
  challenge?: { error: 'invalid_token' | 'insufficient_scope'; description: string; scopes?: string[] };
}

/**
 * Kept beside the context rather than in it: the gateway core stays free of MCP types, and the state dies with
 * the request.
 */
const states = new WeakMap<GatewayContext, McpRequestState>();

export function mcpState(ctx: GatewayContext): McpRequestState {
  let s = states.get(ctx);
  if (!s) states.set(ctx, (s = { originOk: false }));
  return s;
}

export function peekMcpState(ctx: GatewayContext): McpRequestState | undefined {
  return states.get(ctx);
}
