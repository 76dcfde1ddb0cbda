import { connect } from 'node:net';

export interface RawResponse { status: number; head: string; body: string; raw: string }

/**
 * Sends bytes exactly as given on a fresh TCP connection and reads the first response: the only way to test what
 * a client library would refuse to send (bad targets, TE+CL, obs-fold …). Resolves status 0 if the server closed
 * without answering.
 */
export function rawRequest(port: number, bytes: string | Buffer, opts: { timeoutMs?: number; host?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, opts.host ?? '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${opts.timeoutMs ?? 5000} ms; got: ${data.toString('latin1').slice(0, 300)}`));
    }, opts.timeoutMs ?? 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const raw = data.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const head = end < 0 ? raw : raw.slice(0, end);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
      resolve({ status, head, body: end < 0 ? '' : raw.slice(end + 4), raw });
    };
    socket.on('data', (d) => {
      data = Buffer.concat([data, d]);
      // One full response with a content-length is enough: do not wait for keep-alive sockets to close.
      const raw = data.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end))?.[1];
      if (end >= 0 && len !== undefined && data.length >= end + 4 + Number(len)) finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', () => finish());
    socket.write(bytes);
  });
}

/** A GET with the given target and extra header lines. */
export function rawGet(port: number, target: string, headers: string[] = [], method = 'GET'): Promise<RawResponse> {
  return rawRequest(port, [`${method} ${target} HTTP/1.1`, `host: localhost:${port}`, ...headers, 'connection: close', '', ''].join('\r\n'));
}
