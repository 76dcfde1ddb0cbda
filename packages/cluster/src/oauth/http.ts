import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';
import { readBody } from '../api/http-util.js';
import { paramsOf } from '../api/parse-input.js';
import { tryDecodeComponent } from '../api/uri-component.js';

/**
 * CORS for the endpoints browser-based MCP clients call cross-origin (metadata, JWKS, token, registration,
 * revocation). No cookies are involved there, so `*` is safe; the authorization endpoint is a navigation and
 * gets none.
 */
export const OPEN_CORS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, Accept, MCP-Protocol-Version',
  'access-control-max-age': '600',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', pragma: 'no-cache', ...headers });
  res.end(text);
}

/** Pages must not be framed (clickjacking a consent button) nor leak the query string through Referer. */
export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(html)),
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  // 303: the browser follows a POSTed consent form with a GET to the client's redirect URI.
  res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': '0', ...headers });
  res.end();
}

/** Token/registration requests are small; a hostile client cannot make us buffer more than this. */
const FORM_LIMIT = 64 * 1024;

/**
 * The parameters of an `application/x-www-form-urlencoded` body, or of a JSON object (which the token endpoint
 * always accepted), untyped: every endpoint checks them against its schema (request-schemas.ts) before use.
 * A repeated form parameter becomes an array, so that a single-value field refuses it.
 */
export async function readParams(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req, FORM_LIMIT)).toString('utf8');
  if (!String(req.headers['content-type'] ?? '').includes('json')) return paramsOf(new URLSearchParams(raw));
  if (!raw.trim()) return {};
  const obj = parseJsonObject(raw);
  if (!obj) throw new OcteliumError('INVALID_ARGUMENT', 'the request body must be a JSON object');
  return obj;
}

export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const raw = (await readBody(req, FORM_LIMIT)).toString('utf8');
  return parseJsonObject(raw);
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Cookies by name. A value that is not valid percent-encoding is skipped, not an error: it may belong to any
 * other application on this host, and ours (the CSRF cookie) is base64url, which never needs decoding.
 */
export function cookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of String(req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const value = tryDecodeComponent(part.slice(i + 1).trim());
    if (value !== undefined) out.set(part.slice(0, i).trim(), value);
  }
  return out;
}
