import type { AccessLog } from '@octelium-ts/shared';

export interface McpInfo { method?: string; tool?: string }

/** JSON-RPC method (and tool name of a tools/call) of a logged request, when its bodyMap was JSON-RPC. */
export function mcpInfo(log: AccessLog): McpInfo {
  const body = log.entry.info.http.request.bodyMap as { jsonrpc?: unknown; method?: unknown; params?: { name?: unknown } } | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body) || body.jsonrpc !== '2.0' || typeof body.method !== 'string') return {};
  const tool = body.method === 'tools/call' && typeof body.params?.name === 'string' ? body.params.name : undefined;
  return tool ? { method: body.method, tool } : { method: body.method };
}
