import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';

const gzip = promisify(gzipCb);

/** What the OpenTelemetry SDK's OTLP/HTTP transport retries, and how (its retrying-transport constants). */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const RETRYABLE_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);
const MAX_ATTEMPTS = 5;
const INITIAL_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5000;
const BACKOFF_MULTIPLIER = 1.5;
const JITTER = 0.2;

type Attempt = { ok: true } | { ok: false; retryAfterMs?: number; retryable: boolean };

/**
 * POSTs OTLP/JSON export requests, as the SDK's exporter did: the configured headers, a timeout for the whole
 * export, and retries with jittered exponential backoff (or the receiver's Retry-After) on 429/502/503/504 and on
 * connection errors, as long as the next attempt starts before the timeout.
 */
export class OtlpHttpSender {
  readonly #url: URL;
  readonly #headers: Record<string, string>;

  constructor(url: string, headers: Record<string, string>, private readonly timeoutMs: number, private readonly compress = false) {
    this.#url = new URL(url);
    this.#headers = { 'user-agent': 'octelium-cluster-otlp', ...headers, 'content-type': 'application/json', ...(compress ? { 'content-encoding': 'gzip' } : {}) };
  }

  /** Sends one export request's body (JSON text, or its UTF-8 bytes, which must stay unchanged until this settles). */
  async send(json: string | Buffer): Promise<boolean> {
    // Encoded (and compressed, off this thread's loop, in libuv's pool) once, for every attempt.
    const body = this.compress ? await gzip(json) : typeof json === 'string' ? Buffer.from(json) : json;
    const deadline = Date.now() + this.timeoutMs;
    let backoff = INITIAL_BACKOFF_MS;
    for (let attempt = 1; ; attempt++) {
      const r = await this.#attempt(body, deadline - Date.now());
      if (r.ok) return true;
      if (!r.retryable || attempt >= MAX_ATTEMPTS) return false;
      const wait = r.retryAfterMs ?? Math.min(backoff, MAX_BACKOFF_MS) * (1 + (Math.random() * 2 - 1) * JITTER);
      backoff *= BACKOFF_MULTIPLIER;
      if (Date.now() + wait >= deadline) return false;
      await new Promise((ok) => setTimeout(ok, wait).unref());
    }
  }

  #attempt(body: Buffer, timeoutMs: number): Promise<Attempt> {
    return new Promise((resolve) => {
      const request = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = request(this.#url, {
        method: 'POST',
        headers: { ...this.#headers, 'content-length': body.length },
        timeout: Math.max(1, timeoutMs),
      }, (res) => {
        res.resume(); // the answer (an ExportTraceServiceResponse / partial success) is not used
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve({ ok: true });
          resolve({ ok: false, retryable: RETRYABLE_STATUS.has(status), retryAfterMs: retryAfterMs(res.headers['retry-after']) });
        });
        res.on('error', () => resolve({ ok: false, retryable: false }));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('OTLP export timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, retryable: RETRYABLE_ERRORS.has(err.code ?? '') }));
      req.end(body);
    });
  }
}

/** Retry-After as seconds or an HTTP date, in ms from now. */
function retryAfterMs(h: string | undefined): number | undefined {
  if (!h) return undefined;
  const seconds = Number(h);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS` (`k=v,k2=v2`, values URL-encoded), which the
 * SDK's exporter read; configured headers win over both, the signal's over the general one, as in the SDK.
 */
export function envHeaders(signal: 'LOGS' | 'TRACES', env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const list of [env.OTEL_EXPORTER_OTLP_HEADERS, env[`OTEL_EXPORTER_OTLP_${signal}_HEADERS`]]) {
    for (const pair of (list ?? '').split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const key = pair.slice(0, eq).trim(), raw = pair.slice(eq + 1).trim();
      let v = raw;
      try {
        v = decodeURIComponent(raw);
      } catch {
        /* not URL-encoded: taken as is */
      }
      if (key) out[key] = v;
    }
  }
  return out;
}

/** `OTEL_EXPORTER_OTLP_[<SIGNAL>_]COMPRESSION=gzip`, as the SDK's exporter honoured it. */
export function envGzip(signal: 'LOGS' | 'TRACES', env: NodeJS.ProcessEnv = process.env): boolean {
  return (env[`OTEL_EXPORTER_OTLP_${signal}_COMPRESSION`] ?? env.OTEL_EXPORTER_OTLP_COMPRESSION ?? '').trim() === 'gzip';
}
