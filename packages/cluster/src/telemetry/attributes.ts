import type { AccessLog } from '@octelium-ts/shared';
import { mcpInfo } from './mcp-info.js';

export type Attributes = Record<string, string | number | boolean>;

/** Log record attributes: the few a backend filters on (the body, the AccessLog itself, has everything). */
export function logAttributes(log: AccessLog): Attributes {
  const c = log.entry.common;
  const mcp = mcpInfo(log);
  const a: Attributes = { status: c.status, 'http.response.status_code': log.entry.info.http.response.code };
  if (c.userRef?.name) a.user = c.userRef.name;
  if (c.serviceRef?.name) a.service = c.serviceRef.name;
  if (c.namespaceRef?.name) a.namespace = c.namespaceRef.name;
  if (mcp.method) a['mcp.method'] = mcp.method;
  if (mcp.tool) a['mcp.tool'] = mcp.tool;
  return a;
}

/** Span attributes: the log record's, plus what a span has no body for. */
export function spanAttributes(log: AccessLog, base: Attributes): Attributes {
  const c = log.entry.common;
  const a: Attributes = { ...base, 'http.request.method': log.entry.info.http.request.method, 'url.path': log.entry.info.http.request.path, 'octelium.reason': c.reason.type, 'octelium.request_id': log.metadata.id };
  if (c.sessionRef?.name) a['octelium.session'] = c.sessionRef.name;
  return a;
}

/** `tools/call add` for MCP requests, else `POST my-svc`. */
export function spanName(log: AccessLog, a: Attributes): string {
  if (a['mcp.method']) return `${a['mcp.method']}${a['mcp.tool'] ? ` ${a['mcp.tool']}` : ''}`;
  return `${log.entry.info.http.request.method} ${log.entry.common.serviceRef?.name ?? ''}`.trim();
}
