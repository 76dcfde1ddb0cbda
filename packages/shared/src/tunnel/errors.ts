/** The peer broke the wire protocol; the whole connection is closed (GOAWAY PROTOCOL_ERROR). */
export class TunnelProtocolError extends Error {
  readonly code = 'PROTOCOL';
  constructor(message: string) {
    super(message);
    this.name = 'TunnelProtocolError';
  }
}

/** One logical stream ended abnormally: reset by either side, or its connection was lost. */
export class TunnelStreamError extends Error {
  readonly code: string;
  /** True when the peer sent the RESET (false: we reset it, or the connection dropped). */
  readonly remote: boolean;
  constructor(code: string, reason: string | undefined, remote = false) {
    super(reason ? `${code}: ${reason}` : code);
    this.name = 'TunnelStreamError';
    this.code = code;
    this.remote = remote;
  }
  /** The reason text without the code prefix. */
  get reason(): string {
    return this.message.startsWith(`${this.code}: `) ? this.message.slice(this.code.length + 2) : this.message;
  }
}
