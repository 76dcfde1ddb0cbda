import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (traceparent/tracestate) for the request thread, without the OpenTelemetry API's context
 * objects: extracting and injecting through the propagator cost several allocations per request, and all the
 * gateway needs is two strings in and two strings out. Parsing follows @opentelemetry/core's
 * W3CTraceContextPropagator exactly (same regex, same version rules), so what is accepted did not change.
 */

export interface TraceParent { traceId: string; spanId: string; sampled: boolean }

const TRACE_PARENT = /^\s?((?!ff)[\da-f]{2})-((?![0]{32})[\da-f]{32})-((?![0]{16})[\da-f]{16})-([\da-f]{2})(-.*)?\s?$/;

/** The parent of an incoming `traceparent` header, or undefined when it is absent or malformed. */
export function parseTraceParent(header: string | string[] | undefined): TraceParent | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string') return undefined;
  const m = TRACE_PARENT.exec(value);
  // Future versions may add fields; version 00 may not.
  if (!m || (m[1] === '00' && m[5])) return undefined;
  return { traceId: m[2], spanId: m[3], sampled: (parseInt(m[4], 16) & 1) === 1 };
}

export function formatTraceParent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/** Random bytes are drawn in blocks: one getrandom call per ~340 spans instead of two per span. */
const POOL = Buffer.alloc(8192);
let poolOffset = POOL.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL.length) {
      randomFillSync(POOL);
      poolOffset = 0;
    }
    const hex = POOL.toString('hex', poolOffset, (poolOffset += bytes));
    if (!/^0+$/.test(hex)) return hex; // all-zero ids are invalid
  }
}

export const newTraceId = (): string => randomHex(16);
export const newSpanId = (): string => randomHex(8);
