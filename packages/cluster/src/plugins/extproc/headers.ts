import type { WireHeaderMap, WireHeaderMutation, WireHeaderValue } from './wire.js';
import { HeaderAppendAction } from './wire.js';

/** Raised for mutations Envoy would reject with an error (not merely ignore); the exchange turns it into PLUGIN_FAILED. */
export class MutationError extends Error {}

// RFC 9110 token, plus the pseudo-header form; Envoy rejects anything else (HeaderUtility::headerNameIsValid).
const HEADER_NAME = /^:?[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// Envoy's headerValueIsValid: no NUL, CR or LF.
const HEADER_VALUE_INVALID = /[\0\r\n]/;

/** Header values travel as bytes (raw_value); latin1 keeps Node's header strings byte-exact both ways. */
export function toWireHeaderMap(headers: Record<string, string>): WireHeaderMap {
  const entries = Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v] as const);
  // Envoy's header maps always iterate pseudo-headers first; some servers rely on that order.
  entries.sort((a, b) => Number(b[0].startsWith(':')) - Number(a[0].startsWith(':')));
  return { headers: entries.map(([key, v]) => ({ key, raw_value: Buffer.from(v, 'latin1') })) };
}

/** Envoy reads raw_value since send_header_raw_value; older servers still send value, so accept either. */
function headerValue(h: WireHeaderValue): string {
  const raw = h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : undefined;
  const str = h.value ?? '';
  if (raw !== undefined && str !== '') throw new MutationError(`header ${h.key}: only one of value or raw_value may be set`);
  return raw ?? str;
}

/**
 * Which headers a mutation may touch. `filter` is Envoy's default HeaderMutationRules (routing
 * headers and x-envoy-* are silently ignored); `immediate` is the permissive checker Envoy uses
 * for ImmediateResponse headers. Removing pseudo-headers or host is never allowed.
 */
export type MutationRules = 'filter' | 'immediate';

const ROUTING_HEADERS = new Set(['host', ':authority', ':method', ':scheme']);

function mayModify(name: string, rules: MutationRules, replacingMessage: boolean): boolean {
  if (rules === 'immediate') return true;
  // CONTINUE_AND_REPLACE may turn a GET into a POST, so Envoy lets it change :method.
  if (ROUTING_HEADERS.has(name)) return replacingMessage && name === ':method';
  return !name.startsWith('x-envoy');
}

function mayRemove(name: string, rules: MutationRules): boolean {
  if (name.startsWith(':') || name === 'host') return false;
  return mayModify(name, rules, false);
}

/**
 * Applies an ExtProc HeaderMutation in place, in Envoy's order (removals, then sets) and with
 * Envoy's ExtProc append semantics: `append_action` when non-default, otherwise the deprecated
 * `append` flag, which defaults to false (overwrite) for ExtProc. "Append" joins with ", " because
 * a Record holds one value per name.
 */
export function applyHeaderMutation(
  headers: Record<string, string>,
  mutation: WireHeaderMutation | undefined,
  rules: MutationRules,
  replacingMessage = false,
): void {
  if (!mutation) return;
  for (const raw of mutation.remove_headers ?? []) {
    const name = raw.toLowerCase();
    if (!HEADER_NAME.test(name)) throw new MutationError(`invalid header name in remove_headers: ${JSON.stringify(raw)}`);
    if (mayRemove(name, rules)) delete headers[name];
  }
  for (const opt of mutation.set_headers ?? []) {
    if (!opt.header) continue;
    const name = (opt.header.key ?? '').toLowerCase();
    const value = headerValue(opt.header);
    if (!HEADER_NAME.test(name)) throw new MutationError(`invalid header name in set_headers: ${JSON.stringify(opt.header.key)}`);
    if (HEADER_VALUE_INVALID.test(value)) throw new MutationError(`invalid header value for ${name}`);
    if (!mayModify(name, rules, replacingMessage)) continue;
    const exists = Object.hasOwn(headers, name);
    const action = opt.append_action ?? HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD;
    let append: boolean;
    switch (action) {
      case HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD:
        append = opt.append?.value ?? false;
        break;
      case HeaderAppendAction.ADD_IF_ABSENT:
        if (exists) continue;
        append = false;
        break;
      case HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD:
        append = false;
        break;
      case HeaderAppendAction.OVERWRITE_IF_EXISTS:
        if (!exists) continue;
        append = false;
        break;
      default:
        throw new MutationError(`invalid append_action ${action} for ${name}`);
    }
    headers[name] = append && exists ? `${headers[name]}, ${value}` : value;
  }
}

export function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

export function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && b[k] === a[k]);
}
