import type { DurationSpec } from '@octelium-ts/shared';

/** Mirrors the Service spec's `plugins[].extProc` (shared/schema/service.ts), so it can be passed as is. */
export interface ExtProcConfig {
  /** `host:port`, plaintext gRPC (h2c). */
  address: string;
  processingMode?: {
    requestHeaderMode?: 'DEFAULT' | 'SEND' | 'SKIP';
    responseHeaderMode?: 'DEFAULT' | 'SEND' | 'SKIP';
    requestBodyMode?: 'NONE' | 'BUFFERED';
    responseBodyMode?: 'NONE' | 'BUFFERED';
  };
  /** Per message round trip, like Envoy's `message_timeout`; default 200 ms. */
  messageTimeout?: DurationSpec;
}

export interface ExtProcHttpMessage {
  /**
   * Lower-case keys, repeated headers joined with ", ". For requests include the pseudo-headers
   * `:method` `:path` `:authority` `:scheme` as Envoy does; for responses `:status` is added from `status`.
   */
  headers: Record<string, string>;
  body?: Buffer;
}

export type ExtProcResult =
  | {
      kind: 'continue';
      /** Requests keep their pseudo-headers (`:path` may have been rewritten); responses never contain `:status`. */
      headers: Record<string, string>;
      /** The (possibly replaced) body; undefined when there was none and none was added. */
      body?: Buffer;
      bodyChanged: boolean;
      headersChanged: boolean;
      /** Responses only: the status after mutations (an ExtProc server may set `:status`). */
      status?: number;
    }
  | {
      kind: 'immediate';
      status: number;
      headers: Record<string, string>;
      body: Buffer;
      /** ImmediateResponse.details, for the access log. */
      details?: string;
    };

/** One ExtProc exchange = one gRPC Process stream per HTTP request, as Envoy does. */
export interface ExtProcExchange {
  /** Sends request_headers (+ request_body when BUFFERED). Throws OcteliumError('PLUGIN_FAILED') on failure. */
  onRequest(msg: ExtProcHttpMessage): Promise<ExtProcResult>;
  /** Sends response_headers (+ response_body when BUFFERED). Throws OcteliumError('PLUGIN_FAILED') on failure. */
  onResponse(msg: ExtProcHttpMessage & { status: number }): Promise<ExtProcResult>;
  /** Half-closes the stream; safe to call more than once and after a failure. */
  close(): void;
}
