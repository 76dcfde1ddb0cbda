import { connect } from 'node:net';
import { request } from 'undici';

export interface ProbeOptions {
  /** How long a replica may take to answer its first request. */
  timeoutMs: number;
  signal: AbortSignal;
  /** Throws when the container is gone or restarted (then waiting longer is pointless). */
  alive(): Promise<void>;
}

function tcpOpen(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Readiness as design.md §8 asks: the published port accepts a TCP connection, then the server answers a first HTTP
 * request (any status below 500: it speaks HTTP). Docker's userland proxy accepts connections before the server in the
 * container listens, so the TCP step alone would say "ready" too early.
 */
export async function waitReady(port: number, opts: ProbeOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = 100;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (opts.signal.aborted) throw new Error('cluster is shutting down');
    await opts.alive();
    if (await tcpOpen(port, 1_000)) {
      try {
        const r = await request(`http://127.0.0.1:${port}/`, { method: 'GET', headersTimeout: 2_000, bodyTimeout: 2_000, signal: opts.signal });
        await r.body.dump();
        if (r.statusCode < 500) return;
        last = `HTTP ${r.statusCode}`;
      } catch (err) {
        last = (err as { code?: string }).code ?? (err as Error).message;
      }
    } else {
      last = 'connection refused';
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 1_000);
  }
  throw new Error(`did not answer HTTP within ${Math.round(opts.timeoutMs / 1000)} s (${last})`);
}
