import type { AccessLog } from '@octelium-ts/shared';
import { mcpInfo } from './mcp-info.js';

export type Attributes = Record<string, string | number | boolean>;

/**
 * The AccessLog fields the exported span and log record are labelled with, flat and in a fixed order: the
 * request thread reads them off the log object it holds (no JSON.parse in the worker, no attribute objects on
 * the request thread); the worker turns them into attributes, span name and status. '' means absent.
 */
export type LogFacts = [
  status: string, code: number, user: string, service: string, namespace: string, mcpMethod: string, mcpTool: string,
  httpMethod: string, path: string, reason: string, requestId: string, session: string, errorCode: string, createdAt: string,
];

export function logFacts(log: AccessLog): LogFacts {
  const c = log.entry.common, http = log.entry.info.http;
  const mcp = mcpInfo(log);
  return [
    c.status, http.response.code, c.userRef?.name ?? '', c.serviceRef?.name ?? '', c.namespaceRef?.name ?? '', mcp.method ?? '', mcp.tool ?? '',
    http.request.method, http.request.path, c.reason.type, log.metadata.id, c.sessionRef?.name ?? '', (c as { error?: { code?: string } }).error?.code ?? '', log.metadata.createdAt,
  ];
}

/** Log record attributes: the few a backend filters on (the body, the AccessLog itself, has everything). */
export function logAttributes(f: LogFacts): Attributes {
  const [status, code, user, service, namespace, mcpMethod, mcpTool] = f;
  const a: Attributes = { status, 'http.response.status_code': code };
  if (user) a.user = user;
  if (service) a.service = service;
  if (namespace) a.namespace = namespace;
  if (mcpMethod) a['mcp.method'] = mcpMethod;
  if (mcpTool) a['mcp.tool'] = mcpTool;
  return a;
}

/** What a span carries besides the log record's attributes (it has no body to look them up in). */
export function spanOnlyAttributes(f: LogFacts): Attributes {
  const [, , , , , , , method, path, reason, requestId, session] = f;
  const a: Attributes = { 'http.request.method': method, 'url.path': path, 'octelium.reason': reason, 'octelium.request_id': requestId };
  if (session) a['octelium.session'] = session;
  return a;
}

/** `tools/call add` for MCP requests, else `POST my-svc`. */
export function spanName(f: LogFacts): string {
  const [, , , service, , mcpMethod, mcpTool, method] = f;
  if (mcpMethod) return `${mcpMethod}${mcpTool ? ` ${mcpTool}` : ''}`;
  return `${method} ${service}`.trim();
}

/** Set for 5xx responses: the span's status is ERROR with the gateway error code (else the HTTP code) as message. */
export function spanError(f: LogFacts): string | undefined {
  return f[1] >= 500 ? f[12] || String(f[1]) : undefined;
}
