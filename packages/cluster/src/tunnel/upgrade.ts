import type { IncomingMessage } from 'node:http';

/** The Session token on a tunnel upgrade: `Authorization: Bearer` (the agent's way) or `X-Octelium-Auth`. */
export function upgradeToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  if (m) return m[1];
  const x = req.headers['x-octelium-auth'];
  return typeof x === 'string' && x.trim() ? x.trim() : undefined;
}

/** Answers an upgrade that will not become a WebSocket with a plain HTTP error and closes the socket. */
export { writeRawError as rejectUpgrade } from '../server/render-error.js';
