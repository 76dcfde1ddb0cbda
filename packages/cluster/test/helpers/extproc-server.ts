import * as grpc from '@grpc/grpc-js';
import { extProcServiceConstructor } from '../../src/plugins/extproc/index.js';
import type { WireProcessingRequest, WireProcessingResponse } from '../../src/plugins/extproc/wire.js';

/** What a test ExtProc server saw on one Process stream. */
export interface StreamLog {
  /** Client address:port — the same value across streams means one shared HTTP/2 connection. */
  peer: string;
  requests: WireProcessingRequest[];
  /** The client half-closed (Envoy does this when the request is done). */
  halfClosed: boolean;
  /** The client cancelled (RST) the call before the server finished it. */
  cancelled: boolean;
}

/** A handler reply: a message, a clean close, a gRPC error, nothing (stay silent), or several of these in order. */
type SingleReply = WireProcessingResponse | { close: true } | { error: grpc.status; details?: string };
export type HandlerReply = SingleReply | SingleReply[] | undefined;
export type Handler = (req: WireProcessingRequest, log: StreamLog) => HandlerReply | Promise<HandlerReply>;

export interface ExtProcTestServer {
  address: string;
  streams: StreamLog[];
  stop(): Promise<void>;
}

/** A real grpc-js ExternalProcessor server on 127.0.0.1:<ephemeral>, built from the same .proto as the client. */
export async function startExtProcServer(handler: Handler): Promise<ExtProcTestServer> {
  const server = new grpc.Server();
  const streams: StreamLog[] = [];
  server.addService(extProcServiceConstructor().service, {
    Process(call: grpc.ServerDuplexStream<WireProcessingRequest, WireProcessingResponse>) {
      const log: StreamLog = { peer: call.getPeer(), requests: [], halfClosed: false, cancelled: false };
      streams.push(log);
      let finished = false;
      // Serialise handling so replies keep request order even when a handler is async.
      let chain = Promise.resolve();
      call.on('data', (req: WireProcessingRequest) => {
        log.requests.push(req);
        chain = chain.then(async () => {
          if (finished) return;
          const out = await handler(req, log);
          for (const reply of out === undefined ? [] : Array.isArray(out) ? out : [out]) {
            if (finished) return;
            if ('close' in reply) {
              finished = true;
              call.end();
            } else if ('error' in reply) {
              finished = true;
              // grpc-js turns an 'error' emitted on a server stream into that status.
              call.emit('error', { code: reply.error, details: reply.details ?? 'test error' });
            } else {
              call.write(reply);
            }
          }
        });
      });
      // A client RST also ends the readable side; wait briefly so a cancel (reported a tick later)
      // is not mistaken for a half-close, then finish the RPC with OK like a typical ExtProc server.
      call.on('end', () => {
        setTimeout(() => {
          void chain.then(() => {
            if (finished) return;
            finished = true;
            log.halfClosed = true;
            call.end();
          });
        }, 20);
      });
      // grpc-js also emits 'cancelled' when a stream closes after a normal finish; only an early one is a client cancel.
      call.on('cancelled', () => {
        if (!finished) log.cancelled = true;
        finished = true;
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    streams,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** Request/response header list as a plain object, decoding raw_value the way the client encodes it. */
export function wireHeaders(req: WireProcessingRequest): Record<string, string> {
  const h = req.request_headers ?? req.response_headers;
  const out: Record<string, string> = {};
  for (const v of h?.headers?.headers ?? []) out[v.key ?? ''] = v.raw_value ? Buffer.from(v.raw_value).toString('latin1') : (v.value ?? '');
  return out;
}

export function setHeader(key: string, value: string, extra: { append?: boolean; append_action?: number } = {}) {
  return {
    header: { key, raw_value: Buffer.from(value, 'latin1') },
    ...(extra.append === undefined ? {} : { append: { value: extra.append } }),
    ...(extra.append_action === undefined ? {} : { append_action: extra.append_action }),
  };
}
