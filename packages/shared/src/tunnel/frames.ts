import { z } from 'zod';
import { TunnelProtocolError } from './errors.js';

/**
 * Wire format of the `octelium connect` tunnel (docs/tunnel.md). Every WebSocket message is one binary frame:
 *
 *   0      1            5             9
 *   +------+------------+-------------+------------------+
 *   | type | stream id  | length      | payload          |
 *   | u8   | u32 BE     | u32 BE      | `length` bytes   |
 *   +------+------------+-------------+------------------+
 *
 * Stream 0 carries connection control (hello, welcome, services, goaway). Body bytes travel raw in DATA frames;
 * only heads and control messages are JSON, so a streamed body is never re-encoded.
 */
export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  SERVICES: 0x03,
  GOAWAY: 0x04,
  REQUEST_HEAD: 0x10,
  RESPONSE_HEAD: 0x11,
  DATA: 0x12,
  END: 0x13,
  RESET: 0x14,
  WINDOW: 0x15,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
export type ControlFrameType = typeof FrameType.HELLO | typeof FrameType.WELCOME | typeof FrameType.SERVICES | typeof FrameType.GOAWAY;

const FRAME_TYPES = new Set<number>(Object.values(FrameType));
const CONTROL_TYPES = new Set<number>([FrameType.HELLO, FrameType.WELCOME, FrameType.SERVICES, FrameType.GOAWAY]);

/** Versions this build speaks, preferred first. */
export const TUNNEL_PROTOCOL_VERSIONS: readonly number[] = [1];
export const TUNNEL_PATH = '/api/v1/connect';
export const FRAME_HEADER_BYTES = 9;
/** Per-stream credit each receiver grants (protocol v1 constant: both ends must agree). */
export const DEFAULT_STREAM_WINDOW = 256 * 1024;
/** Largest DATA payload; small enough that many streams interleave finely on one socket. */
export const MAX_DATA_FRAME = 64 * 1024;
/** Largest frame of any kind (JSON heads included); also the WebSocket maxPayload. */
export const MAX_FRAME_BYTES = 1024 * 1024;

export interface Frame { type: FrameType; streamId: number; payload: Buffer }

const EMPTY = Buffer.alloc(0);

export function encodeFrame(type: FrameType, streamId: number, payload: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt8(type, 0);
  out.writeUInt32BE(streamId >>> 0, 1);
  out.writeUInt32BE(payload.length, 5);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

export function encodeJSONFrame(type: FrameType, streamId: number, message: unknown): Buffer {
  return encodeFrame(type, streamId, Buffer.from(JSON.stringify(message), 'utf8'));
}

export function encodeWindowFrame(streamId: number, increment: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(increment, 0);
  return encodeFrame(FrameType.WINDOW, streamId, p);
}

/** Parses one frame; throws TunnelProtocolError on anything malformed (the connection is then closed). */
export function decodeFrame(data: Buffer): Frame {
  if (data.length < FRAME_HEADER_BYTES) throw new TunnelProtocolError(`short frame (${data.length} bytes)`);
  const type = data.readUInt8(0);
  if (!FRAME_TYPES.has(type)) throw new TunnelProtocolError(`unknown frame type 0x${type.toString(16)}`);
  const streamId = data.readUInt32BE(1);
  const length = data.readUInt32BE(5);
  if (length !== data.length - FRAME_HEADER_BYTES) {
    throw new TunnelProtocolError(`frame length ${length} does not match payload of ${data.length - FRAME_HEADER_BYTES} bytes`);
  }
  if (CONTROL_TYPES.has(type) !== (streamId === 0)) {
    throw new TunnelProtocolError(`frame type 0x${type.toString(16)} is not allowed on stream ${streamId}`);
  }
  return { type: type as FrameType, streamId, payload: data.subarray(FRAME_HEADER_BYTES) };
}

export function decodeWindowIncrement(frame: Frame): number {
  if (frame.payload.length !== 4) throw new TunnelProtocolError('WINDOW payload must be 4 bytes');
  const inc = frame.payload.readUInt32BE(0);
  if (inc === 0) throw new TunnelProtocolError('WINDOW increment must be positive');
  return inc;
}

export function decodeJSONPayload<T>(frame: Frame, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(frame.payload.toString('utf8'));
  } catch {
    throw new TunnelProtocolError(`frame 0x${frame.type.toString(16)} carries invalid JSON`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new TunnelProtocolError(`frame 0x${frame.type.toString(16)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

// Messages. Objects are not strict so a newer peer may add fields within one protocol version.

export const HeaderMapSchema = z.record(z.string(), z.union([z.string(), z.array(z.string())]));
export type HeaderMap = z.infer<typeof HeaderMapSchema>;

export const HelloSchema = z.object({
  versions: z.array(z.number().int().positive()).min(1),
  agent: z.object({ version: z.string(), hostname: z.string().optional(), pid: z.number().int().optional() }).optional(),
  /** Service names the agent asks to serve. */
  serve: z.array(z.string()).default([]),
  /** Serve every Service whose upstream.user is this agent's User. */
  serveAll: z.boolean().default(false),
  /** Service names published on local ports (informational; the gateway authorizes each request). */
  publish: z.array(z.string()).default([]),
});
export type HelloMessage = z.input<typeof HelloSchema>;

export const AcceptedServiceSchema = z.object({
  name: z.string(),
  /** The only upstream URLs the agent may dial for this Service. */
  upstreams: z.array(z.string()),
});
export type AcceptedService = z.infer<typeof AcceptedServiceSchema>;

export const RejectedServiceSchema = z.object({ name: z.string(), reason: z.string() });
export type RejectedService = z.infer<typeof RejectedServiceSchema>;

export const WelcomeSchema = z.object({
  version: z.number().int().positive(),
  agentId: z.string(),
  user: z.string(),
  services: z.array(AcceptedServiceSchema),
  rejected: z.array(RejectedServiceSchema),
});
export type WelcomeMessage = z.infer<typeof WelcomeSchema>;

/** Hub → agent: the full current list of accepted Services (replaces the previous one). */
export const ServicesSchema = z.object({ services: z.array(AcceptedServiceSchema) });
export type ServicesMessage = z.infer<typeof ServicesSchema>;

export const GoAwaySchema = z.object({
  code: z.string(),
  reason: z.string(),
  supportedVersions: z.array(z.number()).optional(),
});
export type GoAwayMessage = z.infer<typeof GoAwaySchema>;

export const RequestHeadSchema = z.object({
  /** `serve`: hub → agent, dial the Service's upstream. `publish`: agent → hub, replay through the gateway. */
  kind: z.enum(['serve', 'publish']),
  service: z.string().min(1),
  upstreamURL: z.string().optional(),
  method: z.string().regex(/^[A-Za-z]+$/),
  path: z.string().startsWith('/'),
  headers: HeaderMapSchema,
  /** False: the sender ends its side right after the head, and the receiver sends no body upstream. */
  hasBody: z.boolean(),
});
export type RequestHead = z.infer<typeof RequestHeadSchema>;

export const ResponseHeadSchema = z.object({
  status: z.number().int().min(100).max(999),
  headers: HeaderMapSchema,
});
export type ResponseHead = z.infer<typeof ResponseHeadSchema>;

export const RESET_CODES = [
  'CANCEL', 'REFUSED', 'UPSTREAM_FAILED', 'FLOW_CONTROL', 'PROTOCOL', 'INTERNAL', 'CONNECTION_LOST', 'TOO_MANY_STREAMS',
  'OVER_BUDGET',
] as const;
export type ResetCode = (typeof RESET_CODES)[number];
export const ResetSchema = z.object({ code: z.string(), reason: z.string().optional() });
export type ResetMessage = z.infer<typeof ResetSchema>;

export const CONTROL_SCHEMAS = {
  [FrameType.HELLO]: HelloSchema,
  [FrameType.WELCOME]: WelcomeSchema,
  [FrameType.SERVICES]: ServicesSchema,
  [FrameType.GOAWAY]: GoAwaySchema,
} as const;
