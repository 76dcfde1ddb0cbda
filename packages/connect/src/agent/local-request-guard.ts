import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { OcteliumError, publishedPathProblem } from '@octelium-ts/shared';

/**
 * What a published port accepts from local clients. The port acts as the agent's User without any credential, so:
 * - the path must stay under the published Service (publishedPathProblem; the hub checks it again);
 * - `Host` must be a loopback name with this port. A web page the user visits can point a DNS name it controls at
 *   127.0.0.1 (DNS rebinding); its requests then carry that name as Host, and are refused here. IP literals cannot be
 *   rebound, so a non-loopback IP the port listens on is accepted as well;
 * - a browser `Origin`, when present, must be loopback (or allowed) too: any web page can send a "simple" cross-site
 *   POST, without a preflight, to http://127.0.0.1:PORT.
 */
export interface LocalRequestGuard {
  /** Lower-case `host:port` values accepted in `Host`. */
  readonly hosts: ReadonlySet<string>;
  /** Lower-case host names (no port) accepted in `Origin`. */
  readonly originNames: ReadonlySet<string>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

function bracketed(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** The guard for a port listening on `listenHost:port`, with extra host names the user allowed. */
export function localRequestGuard(listenHost: string, port: number, extraNames: readonly string[] = []): LocalRequestGuard {
  const names = new Set(LOOPBACK_NAMES);
  if (isIP(listenHost) && listenHost !== '0.0.0.0' && listenHost !== '::') names.add(bracketed(listenHost).toLowerCase());
  for (const n of extraNames) names.add(bracketed(n.trim()).toLowerCase());
  const hosts = new Set<string>();
  for (const n of names) {
    hosts.add(`${n}:${port}`);
    if (port === 80) hosts.add(n); // browsers leave the default port out
  }
  return { hosts, originNames: names };
}

/** The 400/403 to answer `req` with, or undefined when it may be forwarded. */
export function checkLocalRequest(req: IncomingMessage, guard: LocalRequestGuard): OcteliumError | undefined {
  const host = (req.headers.host ?? '').toLowerCase();
  if (!guard.hosts.has(host)) {
    const example = [...guard.hosts][0];
    return new OcteliumError('ORIGIN_NOT_ALLOWED',
      `Host "${req.headers.host ?? ''}" is not allowed on this published port (DNS rebinding protection): use http://${example}, `
      + 'or allow the name with --publish-allow-host');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !originAllowed(origin, guard)) {
    return new OcteliumError('ORIGIN_NOT_ALLOWED', `requests from the web origin "${origin}" are not allowed on this published port`);
  }
  const problem = publishedPathProblem(req.url ?? '');
  if (problem) return new OcteliumError('INVALID_REQUEST_TARGET', `not forwarded: ${problem}`);
  return undefined;
}

function originAllowed(origin: string, guard: LocalRequestGuard): boolean {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false; // includes "null" (sandboxed frames, file://)
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && guard.originNames.has(u.hostname.toLowerCase());
}
