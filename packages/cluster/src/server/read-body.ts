import type { IncomingMessage } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';

/**
 * The one size-limited body reader of the cluster (API, OAuth, gateway). A declared Content-Length past the limit
 * is refused before a byte is read; a chunked body is counted as it arrives and reading stops at the limit.
 * Event-based rather than `for await`: the async iterator costs a promise per chunk on the gateway's hot path.
 */
/** A declared Content-Length past `limit`: refused before a byte is read (413). */
export function declaredTooLarge(req: IncomingMessage, limit: number, what = 'request body'): OcteliumError | undefined {
  const declared = Number(req.headers['content-length'] ?? -1);
  return declared > limit ? new OcteliumError('BODY_TOO_LARGE', `${what} of ${declared} bytes exceeds the limit of ${limit}`) : undefined;
}

export function readBodyLimited(req: IncomingMessage, limit: number, what = 'request body'): Promise<Buffer> {
  const refused = declaredTooLarge(req, limit, what);
  if (refused) return Promise.reject(refused);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', done);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        done(new OcteliumError('BODY_TOO_LARGE', `${what} exceeds the limit of ${limit} bytes`));
        discardRest(req);
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => done();
    // A client that goes away mid-body: Node destroys the request with an ECONNRESET "aborted" error (after the
    // deprecated 'aborted' event), so 'error' covers it.
    req.on('data', onData).on('end', onEnd).on('error', done);
    if (req.readableEnded) done();
  });
}

/** How much more of an over-size body is read and dropped before the connection is cut. */
const DISCARD_LIMIT = 4 * 1024 * 1024;

/**
 * The rest of a body past its limit is read and dropped, not left unread: a client blocked writing into a full socket
 * never reads our 413 (it hung until the keep-alive timeout). Bounded, so an endless body still ends the connection.
 */
function discardRest(req: IncomingMessage): void {
  let dropped = 0;
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > DISCARD_LIMIT) req.socket.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
}
