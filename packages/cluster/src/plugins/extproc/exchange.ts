import { OcteliumError, durationMs, type AbortSignalLike } from '@octelium-ts/shared';
import { MutationError, applyHeaderMutation, lowerCaseKeys, sameHeaders, toWireHeaderMap } from './headers.js';
import type { ProcessStream, StreamEnd } from './process-stream.js';
import type { ExtProcConfig, ExtProcExchange, ExtProcHttpMessage, ExtProcResult } from './types.js';
import type { WireCommonResponse, WireImmediateResponse, WireProcessingRequest, WireProcessingResponse } from './wire.js';
import { BodySendMode, ResponseStatus } from './wire.js';

/** Envoy's default `message_timeout`. */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 200;
/** Envoy's status for an ImmediateResponse without a (valid) status. */
const DEFAULT_IMMEDIATE_STATUS = 200;

type Direction = 'request' | 'response';
type RequestCase = NonNullable<WireProcessingRequest['request']>;

interface ResolvedMode {
  requestHeaders: boolean;
  responseHeaders: boolean;
  requestBody: boolean;
  responseBody: boolean;
}

export function resolveMode(cfg: ExtProcConfig): ResolvedMode {
  const m = cfg.processingMode ?? {};
  // DEFAULT means SEND for headers; bodies are only sent when BUFFERED (Envoy's defaults).
  return {
    requestHeaders: m.requestHeaderMode !== 'SKIP',
    responseHeaders: m.responseHeaderMode !== 'SKIP',
    requestBody: m.requestBodyMode === 'BUFFERED',
    responseBody: m.responseBodyMode === 'BUFFERED',
  };
}

export function resolveMessageTimeout(cfg: ExtProcConfig): number {
  const ms = durationMs(cfg.messageTimeout, DEFAULT_MESSAGE_TIMEOUT_MS);
  return Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_MESSAGE_TIMEOUT_MS;
}

/** Opens the gRPC call on first use so exchanges that send nothing never touch the network. */
export type StreamOpener = () => ProcessStream;

/**
 * Envoy's ext_proc filter state machine for one HTTP request, restricted to the NONE and BUFFERED
 * body modes: each phase sends headers and/or the whole body, one message at a time, and applies
 * the reply before sending the next. Deviations from Envoy, all towards failing closed: a stream
 * that ends (even cleanly) while a reply is awaited, a spurious reply, or a rejected mutation is
 * a PLUGIN_FAILED error rather than "continue unprocessed".
 */
export class Exchange implements ExtProcExchange {
  private readonly mode: ResolvedMode;
  private readonly timeoutMs: number;
  private stream?: ProcessStream;
  private sentFirst = false;
  /** Envoy's processing_complete_: after an immediate response or a clean close nothing more is sent. */
  private complete = false;
  private failure?: OcteliumError;
  private busy = false;
  private closed = false;
  private readonly onAbort = () => this.fail('aborted by caller');

  constructor(
    private readonly cfg: ExtProcConfig,
    private readonly openStream: StreamOpener,
    private readonly signal?: AbortSignalLike,
  ) {
    this.mode = resolveMode(cfg);
    this.timeoutMs = resolveMessageTimeout(cfg);
    if (signal?.aborted) this.fail('aborted by caller');
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  onRequest(msg: ExtProcHttpMessage): Promise<ExtProcResult> {
    return this.run('request', lowerCaseKeys(msg.headers), msg.body, this.mode.requestHeaders, this.mode.requestBody);
  }

  async onResponse(msg: ExtProcHttpMessage & { status: number }): Promise<ExtProcResult> {
    const headers = lowerCaseKeys(msg.headers);
    headers[':status'] = String(msg.status);
    const result = await this.run('response', headers, msg.body, this.mode.responseHeaders, this.mode.responseBody);
    // The response is the last phase; let the server finish its side of the RPC.
    this.close();
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.stream?.halfClose();
  }

  private async run(
    dir: Direction,
    original: Record<string, string>,
    originalBody: Buffer | undefined,
    sendHeaders: boolean,
    sendBody: boolean,
  ): Promise<ExtProcResult> {
    if (this.failure) throw this.failure;
    if (this.closed && !this.complete) throw this.error(`${dir}: exchange is closed`);
    if (this.busy) throw this.error(`${dir}: exchange already has a phase in flight`);
    this.busy = true;
    try {
      const headers = { ...original };
      let body = originalBody;
      const hasBody = originalBody !== undefined && originalBody.length > 0;
      // A server that closed the stream cleanly between phases is done with this request (Envoy continues unprocessed).
      if (this.stream?.ended?.kind === 'closed') this.complete = true;
      let replaced = false;

      if (!this.complete && sendHeaders) {
        const reply = await this.roundTrip(`${dir}_headers`, { headers: toWireHeaderMap(headers), end_of_stream: !hasBody });
        if (reply.kind === 'immediate') return reply.result;
        const common = reply.common;
        const replacing = common?.status === ResponseStatus.CONTINUE_AND_REPLACE;
        this.applyMutation(headers, common, replacing);
        if (replacing) {
          // CONTINUE_AND_REPLACE: take the body from the mutation (if any) and send nothing more for this direction.
          replaced = true;
          if (common?.body_mutation) {
            body = applyBodyMutation(body, common.body_mutation);
            delete headers['content-length'];
          }
        }
      }

      if (!this.complete && !replaced && sendBody && hasBody) {
        // BUFFERED: the whole body in one message, so it is also the end of the stream.
        const reply = await this.roundTrip(`${dir}_body`, { body: originalBody, end_of_stream: true });
        if (reply.kind === 'immediate') return reply.result;
        const common = reply.common;
        // In BUFFERED mode the headers are still held, so header mutations on a body reply apply too.
        this.applyMutation(headers, common, common?.status === ResponseStatus.CONTINUE_AND_REPLACE);
        if (common?.body_mutation) {
          body = applyBodyMutation(body, common.body_mutation);
          // Envoy always drops content-length when it changes a body; the proxy recomputes it.
          delete headers['content-length'];
        }
      }

      return this.continueResult(dir, original, headers, originalBody, body);
    } finally {
      this.busy = false;
    }
  }

  private continueResult(
    dir: Direction,
    original: Record<string, string>,
    headers: Record<string, string>,
    originalBody: Buffer | undefined,
    body: Buffer | undefined,
  ): ExtProcResult {
    const bodyChanged = !(originalBody ?? EMPTY).equals(body ?? EMPTY);
    if (dir === 'request') return { kind: 'continue', headers, body, bodyChanged, headersChanged: !sameHeaders(original, headers) };
    // :status travels as a header (as in Envoy) but is reported as `status`, so it is not a header change.
    const status = parseStatus(headers[':status']);
    if (status === undefined) throw this.fail(`response: invalid :status ${JSON.stringify(headers[':status'])} from ExtProc`);
    const { [':status']: _before, ...originalRest } = original;
    delete headers[':status'];
    return { kind: 'continue', headers, body, bodyChanged, headersChanged: !sameHeaders(originalRest, headers), status };
  }

  private applyMutation(headers: Record<string, string>, common: WireCommonResponse | undefined, replacing: boolean): void {
    try {
      applyHeaderMutation(headers, common?.header_mutation, 'filter', replacing);
    } catch (e) {
      if (e instanceof MutationError) throw this.fail(`rejected header mutation: ${e.message}`);
      throw e;
    }
  }

  /** Sends one message and waits for the matching reply; everything else fails the exchange. */
  private async roundTrip<C extends RequestCase>(
    sentCase: C,
    payload: NonNullable<WireProcessingRequest[C]>,
  ): Promise<{ kind: 'common'; common?: WireCommonResponse } | { kind: 'immediate'; result: ExtProcResult }> {
    const stream = this.ensureStream();
    const msg: WireProcessingRequest = { [sentCase]: payload };
    if (!this.sentFirst) {
      this.sentFirst = true;
      msg.protocol_config = {
        request_body_mode: this.mode.requestBody ? BodySendMode.BUFFERED : BodySendMode.NONE,
        response_body_mode: this.mode.responseBody ? BodySendMode.BUFFERED : BodySendMode.NONE,
      };
    }
    stream.send(msg);
    // One timer per message, like Envoy's message_timeout; it is not restarted by ignored messages.
    const deadline = Date.now() + this.timeoutMs;
    let reply: WireProcessingResponse;
    for (;;) {
      try {
        reply = await stream.receive(Math.max(1, deadline - Date.now()), this.timeoutMs);
      } catch (e) {
        throw this.fail(describeEnd(e as StreamEnd, sentCase));
      }
      // Envoy without max_message_timeout ignores a timeout-extension message entirely (other fields included).
      if (reply.override_message_timeout) continue;
      break;
    }
    if (reply.response === 'immediate_response' && reply.immediate_response) {
      this.complete = true;
      const result = this.immediateResult(reply.immediate_response);
      this.close();
      return { kind: 'immediate', result };
    }
    if (reply.response !== sentCase) {
      throw this.fail(`spurious reply ${reply.response ?? '(none)'} to ${sentCase}`);
    }
    return { kind: 'common', common: reply[sentCase]?.response };
  }

  private immediateResult(r: WireImmediateResponse): ExtProcResult {
    const code = r.status?.code;
    // Envoy: a missing or sub-200 status becomes 200; we also refuse codes Node cannot send.
    const status = code !== undefined && code >= 200 && code <= 599 ? code : DEFAULT_IMMEDIATE_STATUS;
    const body = r.body ? Buffer.from(r.body) : Buffer.alloc(0);
    // Envoy's local reply starts with text/plain for a non-empty body; the server's mutations apply on top.
    const headers: Record<string, string> = body.length > 0 ? { 'content-type': 'text/plain' } : {};
    try {
      applyHeaderMutation(headers, r.headers, 'immediate');
    } catch (e) {
      if (e instanceof MutationError) throw this.fail(`rejected immediate response headers: ${e.message}`);
      throw e;
    }
    for (const k of Object.keys(headers)) if (k.startsWith(':')) delete headers[k];
    return { kind: 'immediate', status, headers, body, ...(r.details ? { details: r.details } : {}) };
  }

  private ensureStream(): ProcessStream {
    if (!this.stream) {
      try {
        this.stream = this.openStream();
      } catch (e) {
        throw this.fail(`cannot open stream: ${(e as Error).message}`);
      }
    }
    return this.stream;
  }

  private error(reason: string): OcteliumError {
    return new OcteliumError('PLUGIN_FAILED', `ExtProc ${this.cfg.address}: ${reason}`, { plugin: 'extProc', address: this.cfg.address });
  }

  /** Marks the exchange failed (every later call rethrows) and tears the stream down. */
  private fail(reason: string): OcteliumError {
    if (this.failure) return this.failure;
    this.failure = this.error(reason);
    this.stream?.abort({ kind: 'local', reason });
    this.close();
    return this.failure;
  }
}

const EMPTY = Buffer.alloc(0);

function applyBodyMutation(body: Buffer | undefined, m: NonNullable<WireCommonResponse['body_mutation']>): Buffer | undefined {
  if (m.mutation === 'body') return m.body ? Buffer.from(m.body) : Buffer.alloc(0);
  if (m.mutation === 'clear_body' && m.clear_body) return Buffer.alloc(0);
  return body;
}

function parseStatus(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{3}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 100 && n <= 599 ? n : undefined;
}

function describeEnd(end: StreamEnd, awaiting: string): string {
  if (end.kind === 'closed') return `server closed the stream while ${awaiting} awaited a reply`;
  return `${awaiting}: ${end.reason}`;
}
