import { durationMs, type ServiceSpec } from '@octelium-ts/shared';
import { DEFAULT_MCP_SCOPE } from '../oauth/index.js';

/** A Service's MCP behaviour with defaults applied (docs/mcp.md "Service settings"). */
export interface McpSettings {
  scopes: string[];
  audiences: string[];
  requireAudience: boolean;
  allowedOrigins: string[];
  filterLists: boolean;
  keepAliveMs: number;
}

const DEFAULT_KEEPALIVE_MS = 25_000;
const cache = new WeakMap<ServiceSpec, McpSettings | null>();

/** The MCP settings of a Service that is MCP-aware (`mode: MCP` or an `mcp:` block), else undefined. */
export function mcpSettings(spec: ServiceSpec): McpSettings | undefined {
  let s = cache.get(spec);
  if (s === undefined) {
    const m = spec.mcp;
    s = spec.mode === 'MCP' || m ? {
      scopes: m?.scopes ?? [DEFAULT_MCP_SCOPE],
      audiences: m?.audiences ?? [],
      requireAudience: m?.requireAudience ?? false,
      allowedOrigins: m?.allowedOrigins ?? [],
      filterLists: m?.filterLists ?? true,
      keepAliveMs: durationMs(m?.keepAlive, DEFAULT_KEEPALIVE_MS),
    } : null;
    cache.set(spec, s);
  }
  return s ?? undefined;
}
