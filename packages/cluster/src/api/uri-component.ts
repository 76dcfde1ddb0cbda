import { OcteliumError } from '@octelium-ts/shared';

/**
 * `decodeURIComponent` that never throws: undefined for malformed percent-encoding (`%zz`, a lone `%`, an
 * escape that is not UTF-8). Every value a client percent-encoded goes through here, because the built-in
 * throws a URIError, and one thrown out of a request handler is a 500 at best.
 */
export function tryDecodeComponent(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** The same for request input that must decode: malformed encoding is the client's mistake, a 400 naming `what`. */
export function decodeComponent(s: string, what: string): string {
  const out = tryDecodeComponent(s);
  if (out === undefined) throw new OcteliumError('INVALID_ARGUMENT', `${what} is not valid percent-encoding`);
  return out;
}
