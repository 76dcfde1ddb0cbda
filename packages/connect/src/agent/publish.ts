import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import {
  OcteliumError, TunnelStreamError, endToEndHeaders, requestHasBody, type TunnelMux,
} from '@octelium-ts/shared';
import { checkLocalRequest, localRequestGuard, type LocalRequestGuard } from './local-request-guard.js';

/** RESET codes that mean "not now" rather than "failed": answered with 503. */
const OVERLOADED = new Set(['OVER_BUDGET', 'TOO_MANY_STREAMS']);

/** `-p SVC:PORT` or `-p SVC:HOST:PORT` (HOST may be `[v6]`). */
export interface PublishSpec { service: string; host?: string; port: number }

export function parsePublishSpec(spec: string): PublishSpec {
  const m = /^([^:]+):(?:(\[[^\]]+\]|[^:]+):)?(\d+)$/.exec(spec.trim());
  if (!m) throw new OcteliumError('INVALID_ARGUMENT', `invalid --publish "${spec}": expected SVC:PORT or SVC:HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new OcteliumError('INVALID_ARGUMENT', `invalid --publish "${spec}": port out of range`);
  return { service: m[1], host: m[2]?.replace(/^\[|\]$/g, ''), port };
}

export function formatAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export interface PublishListenerOptions {
  /** The live tunnel, waiting up to `ms` for one while (re)connecting; undefined when there is none. */
  getMux(ms: number): Promise<TunnelMux | undefined>;
  /** How long a local request waits for a reconnecting tunnel before 503. */
  graceMs: number;
  onStream?: () => void;
  /** Host names accepted in `Host` besides loopback ones (`--publish-allow-host`); see local-request-guard.ts. */
  allowedHosts?: readonly string[];
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * A local HTTP listener for one published Service. Each request becomes one tunnel stream; the hub replays it through
 * the cluster's gateway as this agent's User, so local clients need no credential. Listening starts before the tunnel
 * is up and survives reconnects, so the port stays the same for local clients.
 */
export class PublishListener {
  readonly spec: PublishSpec;
  address?: string;
  readonly #opts: PublishListenerOptions;
  readonly #server: Server;
  #guard?: LocalRequestGuard;

  constructor(spec: PublishSpec, opts: PublishListenerOptions) {
    this.spec = spec;
    this.#opts = opts;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: Error) => {
        this.#opts.log('published request failed', { service: spec.service, error: err.message });
        sendError(res, new OcteliumError('INTERNAL', 'octelium connect failed to forward the request'));
      });
    });
    // SSE and MCP streams are long-lived; Node's default request timeout (5 min) would cut them.
    this.#server.requestTimeout = 0;
  }

  listen(): Promise<string> {
    const host = this.spec.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.spec.port, host, () => {
        this.#server.off('error', reject);
        const a = this.#server.address() as AddressInfo;
        this.address = formatAddress(a.address, a.port);
        this.#guard = localRequestGuard(host, a.port, this.#opts.allowedHosts);
        resolve(this.address);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refused = this.#guard ? checkLocalRequest(req, this.#guard) : new OcteliumError('UNREACHABLE', 'not listening');
    if (refused) {
      req.resume();
      return sendError(res, refused);
    }
    const mux = await this.#opts.getMux(this.#opts.graceMs);
    if (!mux || mux.closed) {
      return sendError(res, new OcteliumError('UPSTREAM_NOT_CONNECTED', 'octelium connect is not connected to the cluster; retrying in the background'));
    }
    const hasBody = requestHasBody(req.headers);
    const stream = mux.openStream({
      kind: 'publish',
      service: this.spec.service,
      method: req.method ?? 'GET',
      path: req.url!, // checked by checkLocalRequest
      headers: endToEndHeaders(req.headers),
      hasBody,
    });
    this.#opts.onStream?.();
    res.on('close', () => {
      if (!res.writableFinished && !stream.closed) stream.reset('CANCEL', 'local client went away');
    });
    if (hasBody) {
      pipeline(req, stream.writable, (err) => {
        if (err && !stream.closed) stream.reset('CANCEL', `local request body failed: ${err.message}`);
      });
    } else {
      stream.writable.end();
      req.resume();
    }
    let head;
    try {
      head = await stream.responseHead;
    } catch (err) {
      const reason = err instanceof TunnelStreamError ? err.reason : (err as Error).message;
      if (err instanceof TunnelStreamError && OVERLOADED.has(err.code)) {
        return sendError(res, new OcteliumError('UNREACHABLE', `the tunnel is at its limit (${err.code}: ${reason}); retry later`));
      }
      return sendError(res, new OcteliumError('UPSTREAM_FAILED', `the cluster could not complete the request for ${this.spec.service}: ${reason}`));
    }
    if (res.destroyed) return;
    res.writeHead(head.status, head.headers);
    res.flushHeaders();
    pipeline(stream.readable, res, () => {});
  }
}

function sendError(res: ServerResponse, err: OcteliumError): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toJSON());
  res.writeHead(err.httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
