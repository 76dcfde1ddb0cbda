import type { IncomingHttpHeaders } from 'node:http';
import { isObject, type JsonRpcMessage } from './jsonrpc.js';

/** The first "modern" (stateless, header-mirrored) revision. Dates compare correctly as strings. */
export const MODERN_VERSION = '2026-07-28';
/** Batches were removed in 2025-06-18; a request without MCP-Protocol-Version is 2025-03-26 (spec default). */
const BATCHLESS_FROM = '2025-06-18';
const ASSUMED_LEGACY = '2025-03-26';
const VERSION_RE = /^\d{4}-\d{2}-\d{2}$/;

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** `=?base64?…?=` wraps header values that are not plain ASCII (2026-07-28 transport). */
export function decodeMirrorHeader(v: string): string {
  const m = /^=\?base64\?(.*)\?=$/i.exec(v.trim());
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : v.trim();
}

export function metaVersionOf(m: JsonRpcMessage | undefined): string | undefined {
  const meta = m?.params?._meta;
  const v = isObject(meta) ? meta['io.modelcontextprotocol/protocolVersion'] : undefined;
  return typeof v === 'string' ? v : undefined;
}

export interface Era { modern: boolean; version: string }

/** Era detection (mcp-spec.md §1b): a body `_meta` version (or header) ≥ 2026-07-28 is modern; else legacy. */
export function eraOf(headers: IncomingHttpHeaders, body: unknown): Era {
  const headerVersion = header(headers, 'mcp-protocol-version');
  const meta = Array.isArray(body) ? undefined : metaVersionOf(body as JsonRpcMessage);
  const v = meta ?? headerVersion;
  if (v && VERSION_RE.test(v) && v >= MODERN_VERSION) return { modern: true, version: v };
  return { modern: false, version: headerVersion && VERSION_RE.test(headerVersion) ? headerVersion : ASSUMED_LEGACY };
}

/** Whether a legacy request of this version may send a JSON-RPC batch (only 2025-03-26 had them). */
export function batchesAllowed(era: Era): boolean {
  return !era.modern && era.version < BATCHLESS_FROM;
}

/** The body value `Mcp-Name` must mirror for a method, if any. */
function nameOf(m: JsonRpcMessage): string | undefined {
  const p = m.params ?? {};
  if (m.method === 'tools/call' || m.method === 'prompts/get') return typeof p.name === 'string' ? p.name : undefined;
  if (m.method === 'resources/read') return typeof p.uri === 'string' ? p.uri : undefined;
  return undefined;
}

/**
 * 2026-07-28 mirror headers: whoever reads the body must check `MCP-Protocol-Version` == `_meta` version,
 * `Mcp-Method` == method, and `Mcp-Name` == name/uri where the method has one; missing counts as mismatch.
 * Returns the first problem, or undefined. The body stays authoritative: policies see the body.
 */
export function headerMismatch(headers: IncomingHttpHeaders, m: JsonRpcMessage): string | undefined {
  const meta = metaVersionOf(m);
  const hv = header(headers, 'mcp-protocol-version');
  if (hv?.trim() !== meta) return `MCP-Protocol-Version header (${hv ?? 'missing'}) does not match params._meta protocolVersion (${meta ?? 'missing'})`;
  if (typeof m.method !== 'string') return undefined;
  const method = header(headers, 'mcp-method');
  if (method === undefined || decodeMirrorHeader(method) !== m.method) return `Mcp-Method header (${method ?? 'missing'}) does not match the body method "${m.method}"`;
  const name = nameOf(m);
  if (name !== undefined) {
    const h = header(headers, 'mcp-name');
    if (h === undefined || decodeMirrorHeader(h) !== name) return `Mcp-Name header (${h ?? 'missing'}) does not match the body's ${m.method === 'resources/read' ? 'params.uri' : 'params.name'}`;
  }
  return undefined;
}
