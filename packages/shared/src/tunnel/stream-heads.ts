import { TunnelProtocolError } from './errors.js';
import type { Frame, HeaderMap, RequestHead, ResetMessage, ResponseHead } from './frames.js';

/**
 * Decoders for the JSON messages that come with every stream (REQUEST_HEAD, RESPONSE_HEAD, RESET). They accept and
 * return exactly what `RequestHeadSchema`, `ResponseHeadSchema` and `ResetSchema` in frames.ts do (unknown fields are
 * dropped), checked by hand: zod's generic walk was a few percent of both ends' CPU per request, and these three
 * shapes are small and fixed. Connection-level control messages, rare and richer, stay with the zod schemas.
 */
export function decodeRequestHead(frame: Frame): RequestHead {
  const o = jsonObject(frame);
  const { kind, service, upstreamURL, method, path, hasBody } = o;
  if (kind !== 'serve' && kind !== 'publish') invalid(frame, 'kind must be "serve" or "publish"');
  if (typeof service !== 'string' || service.length === 0) invalid(frame, 'service must be a non-empty string');
  if (upstreamURL !== undefined && typeof upstreamURL !== 'string') invalid(frame, 'upstreamURL must be a string');
  if (typeof method !== 'string' || !METHOD.test(method)) invalid(frame, 'method must be letters only');
  if (typeof path !== 'string' || !path.startsWith('/')) invalid(frame, 'path must start with "/"');
  if (typeof hasBody !== 'boolean') invalid(frame, 'hasBody must be a boolean');
  const head: RequestHead = { kind, service, method, path, headers: headerMap(frame, o.headers), hasBody };
  if (upstreamURL !== undefined) head.upstreamURL = upstreamURL;
  return head;
}

export function decodeResponseHead(frame: Frame): ResponseHead {
  const o = jsonObject(frame);
  const { status } = o;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 999) invalid(frame, 'status must be an integer from 100 to 999');
  return { status, headers: headerMap(frame, o.headers) };
}

export function decodeReset(frame: Frame): ResetMessage {
  const o = jsonObject(frame);
  const { code, reason } = o;
  if (typeof code !== 'string') invalid(frame, 'code must be a string');
  if (reason !== undefined && typeof reason !== 'string') invalid(frame, 'reason must be a string');
  return reason === undefined ? { code } : { code, reason };
}

const METHOD = /^[A-Za-z]+$/;

function jsonObject(frame: Frame): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(frame.payload.toString('utf8'));
  } catch {
    throw new TunnelProtocolError(`frame 0x${frame.type.toString(16)} carries invalid JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) invalid(frame, 'expected an object');
  return raw as Record<string, unknown>;
}

/** Header names to a string or a list of strings. `__proto__` is refused: assigned, it would set the map's prototype. */
function headerMap(frame: Frame, value: unknown): HeaderMap {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(frame, 'headers must be an object');
  const out: HeaderMap = {};
  for (const key of Object.keys(value)) {
    if (key === '__proto__') invalid(frame, 'header name __proto__ is not allowed');
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === 'string') out[key] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[key] = v as string[];
    else invalid(frame, `header ${key} must be a string or a list of strings`);
  }
  return out;
}

function invalid(frame: Frame, message: string): never {
  throw new TunnelProtocolError(`frame 0x${frame.type.toString(16)}: ${message}`);
}
