import type { IncomingMessage } from 'node:http';
import { OcteliumError } from '@octelium-ts/shared';

/**
 * The one size-limited body reader of the cluster (API, OAuth, gateway). A declared Content-Length past the limit
 * is refused before a byte is read; a chunked body is counted as it arrives and reading stops at the limit.
 * Event-based rather than `for await`: the async iterator costs a promise per chunk on the gateway's hot path.
 */
export function readBodyLimited(req: IncomingMessage, limit: number, what = 'request body'): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? -1);
  if (declared > limit) return Promise.reject(new OcteliumError('BODY_TOO_LARGE', `${what} of ${declared} bytes exceeds the limit of ${limit}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', done).off('aborted', onAborted);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.pause();
        done(new OcteliumError('BODY_TOO_LARGE', `${what} exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => done();
    const onAborted = () => done(Object.assign(new Error('client closed the request'), { code: 'ECONNRESET' }));
    req.on('data', onData).on('end', onEnd).on('error', done).on('aborted', onAborted);
    if (req.readableEnded) done();
  });
}
