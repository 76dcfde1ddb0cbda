/**
 * The request-target a published port (`octelium connect -p SVC:PORT`) forwards, checked on both ends of the tunnel
 * (the agent answers 400, the hub refuses the stream). The hub replays it as `/svc/<svc><path>` on the cluster, so a
 * path that a URL parser anywhere on the way could resolve upward (`..`, `%2e%2e`, `\`, an encoded `/`) would reach
 * `/api/v1` or another Service with the agent's Session. Such paths are refused, not normalized: no legitimate client
 * sends them (HTTP clients resolve dot segments themselves), and refusing cannot disagree with any later parser.
 */

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;
/** `%` without two hex digits: parsers disagree on it. */
const BAD_PERCENT = /%(?![0-9a-f]{2})/i;

/** Why `target` may not be forwarded from a published port, or undefined when it may. */
export function publishedPathProblem(target: string): string | undefined {
  if (!target.startsWith('/')) return 'only origin-form request targets ("/path") are forwarded; absolute-form and "*" are not';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (target.includes('#')) return 'a request target cannot carry a fragment';
  if (/%00|\0/.test(target)) return 'NUL in the request target';
  if (BAD_PERCENT.test(path)) return 'bad percent-encoding in the path';
  if (/\\|%5c/i.test(path)) return 'a backslash in the path';
  if (/%2f/i.test(path)) return 'an encoded "/" in the path';
  if (path.split('/').some((seg) => DOT_SEGMENT.test(seg))) return 'a "." or ".." segment in the path';
  return undefined;
}
