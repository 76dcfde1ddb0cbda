import type { FrameType } from './frames.js';

/**
 * What the multiplexer needs from a byte pipe that keeps message boundaries (MCP SDK's Transport shape).
 * Implementations: WebSocketTransport (real use) and createLinkedTransportPair (unit tests, no socket).
 * Reconnecting is not the transport's job: the agent makes a new one.
 */
export interface TunnelTransport {
  /** Resolves once frames can be sent (a dialing client socket is open); rejects when it never opens. */
  start(): Promise<void>;
  /**
   * Queues one frame. Returns false once the outgoing buffer is above the transport's high-water mark; the frame is
   * still queued, and `ondrain` fires when the buffer has fallen below the low-water mark again.
   */
  send(frame: Buffer): boolean;
  /**
   * Optional: sends one frame given as its parts (type, stream id, payload), as `send(encodeFrame(...))` would, for a
   * transport that can frame without first copying the payload into an encoded frame (WebSocketTransport on the
   * masking side). Same return value as `send`.
   */
  sendFrame?(type: FrameType, streamId: number, payload: Buffer): boolean;
  close(code?: number, reason?: string): void;
  /** Bytes queued but not yet handed to the network (ws `bufferedAmount`). */
  readonly bufferedAmount: number;
  onmessage?: (frame: Buffer) => void;
  onerror?: (error: Error) => void;
  /** Fires once, however the transport ended (peer close, local close, heartbeat timeout, socket error). */
  onclose?: (info: TransportCloseInfo) => void;
  ondrain?: () => void;
}

export interface TransportCloseInfo { code: number; reason: string }

/** Default outgoing-buffer limits shared by the implementations. */
export const TRANSPORT_HIGH_WATER_MARK = 1024 * 1024;
export const TRANSPORT_LOW_WATER_MARK = 256 * 1024;
