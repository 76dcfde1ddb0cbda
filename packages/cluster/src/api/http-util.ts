import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';
import { asOcteliumError, writeError } from '../server/render-error.js';
import { readBodyLimited } from '../server/read-body.js';

export const MAX_API_BODY = 32 * 1024 * 1024;

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): void {
  if (!(err instanceof OcteliumError)) console.error('internal error:', err);
  if (res.headersSent) return void res.destroy();
  writeError(res, asOcteliumError(err), { headers });
}

/** The body, at most `limit` bytes (413 past it): the cluster's one reader (server/read-body.ts). */
export function readBody(req: IncomingMessage, limit = MAX_API_BODY): Promise<Buffer> {
  return readBodyLimited(req, limit);
}

export async function readJSON(req: IncomingMessage): Promise<unknown> {
  const buf = await readBody(req);
  if (!buf.length) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new OcteliumError('INVALID_ARGUMENT', 'request body is not valid JSON');
  }
}

/** Bearer token from `Authorization: Bearer …` or `X-Octelium-Auth` (design.md §2). */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h && /^bearer\s+/i.test(h)) return h.replace(/^bearer\s+/i, '').trim() || undefined;
  const x = req.headers['x-octelium-auth'];
  return (Array.isArray(x) ? x[0] : x)?.trim() || undefined;
}

/** A body that must be one JSON object (a resource); anything else is a 400 before any field is read. */
export async function readJSONObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const v = await readJSON(req);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new OcteliumError('INVALID_ARGUMENT', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}
