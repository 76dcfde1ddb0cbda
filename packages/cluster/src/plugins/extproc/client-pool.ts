import * as grpc from '@grpc/grpc-js';
import type { AbortSignalLike } from '@octelium-ts/shared';
import { Exchange } from './exchange.js';
import { ProcessStream } from './process-stream.js';
import { extProcServiceConstructor } from './proto.js';
import type { ExtProcConfig, ExtProcExchange } from './types.js';
import type { WireProcessingRequest, WireProcessingResponse } from './wire.js';

export interface ExtProcClientPoolOptions {
  /** Maps a configured address to a gRPC target (e.g. a cluster Service hostname to its endpoint); identity by default. */
  resolveAddress?: (address: string) => string;
  /** Extra grpc-js channel options, merged over the defaults below. */
  channelOptions?: grpc.ChannelOptions;
}

/**
 * grpc-js backs off up to 120 s between reconnects and fails calls fast meanwhile; a gateway that
 * fails closed would then reject every request for minutes after a short ExtProc outage, so keep
 * the backoff short.
 */
const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
};

type ProcessMethod = (metadata?: grpc.Metadata, options?: grpc.CallOptions) => grpc.ClientDuplexStream<WireProcessingRequest, WireProcessingResponse>;

/** One grpc channel (HTTP/2 connection) per address, shared by every exchange to that address. */
export class ExtProcClientPool {
  private readonly clients = new Map<string, grpc.Client>();

  constructor(private readonly options: ExtProcClientPoolOptions = {}) {}

  open(cfg: ExtProcConfig, signal?: AbortSignalLike): ExtProcExchange {
    return new Exchange(cfg, () => new ProcessStream(this.startCall(cfg.address)), signal);
  }

  /** Number of live channels; mainly for tests and metrics. */
  get size(): number {
    return this.clients.size;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private startCall(address: string): grpc.ClientDuplexStream<WireProcessingRequest, WireProcessingResponse> {
    const target = (this.options.resolveAddress ?? ((a: string) => a))(address.trim());
    if (!target) throw new Error('empty ExtProc address');
    let client = this.clients.get(target);
    if (!client) {
      const Ctor = extProcServiceConstructor();
      client = new Ctor(target, grpc.credentials.createInsecure(), { ...DEFAULT_CHANNEL_OPTIONS, ...this.options.channelOptions });
      this.clients.set(target, client);
    }
    const process = (client as unknown as { Process: ProcessMethod }).Process.bind(client);
    return process(new grpc.Metadata());
  }
}
