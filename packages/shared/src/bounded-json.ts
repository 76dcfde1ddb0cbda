/**
 * JSON from the network: strict UTF-8 (RFC 8259 §8.1) and a bounded nesting depth, checked on the bytes before
 * `JSON.parse` runs. Everything downstream that walks a parsed body recursively (CEL activation, redaction, the
 * AccessLog serializer, Lua and ExtProc conversions) can then rely on the depth bound instead of each guarding
 * its own recursion; a body 8 000 levels deep used to overflow the stack after the upstream had answered.
 */
export const MAX_JSON_DEPTH = 64;

export type JsonRejection = 'utf8' | 'depth' | 'syntax';

export class JsonBodyError extends Error {
  constructor(readonly reason: JsonRejection, message: string) {
    super(message);
    this.name = 'JsonBodyError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Deepest array/object nesting of JSON text, counting brackets outside strings; stops early past `limit`. */
export function jsonDepthExceeds(json: Uint8Array | string, limit: number): boolean {
  const text = typeof json === 'string';
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    // UTF-16 code units and UTF-8 bytes agree on every ASCII character this looks at.
    const b = text ? json.charCodeAt(i) : json[i];
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) {
      inString = true;
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > limit) return true;
    } else if (b === 0x5d || b === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Parses a JSON body, or throws a JsonBodyError saying why it is not acceptable. */
export function parseJsonBytes(bytes: Uint8Array, maxDepth = MAX_JSON_DEPTH): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonBodyError('utf8', 'request body is not valid UTF-8');
  }
  if (jsonDepthExceeds(bytes, maxDepth)) throw new JsonBodyError('depth', `JSON nested deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new JsonBodyError('syntax', (e as Error).message);
  }
}

/** Same rules for JSON that is already text (an SSE `data:` field, a captured response). */
export function parseJsonText(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  if (jsonDepthExceeds(text, maxDepth)) throw new JsonBodyError('depth', `JSON nested deeper than ${maxDepth} levels`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new JsonBodyError('syntax', (e as Error).message);
  }
}
