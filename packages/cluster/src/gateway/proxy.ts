import type { Readable } from 'node:stream';
import { OcteliumError } from '@octelium-ts/shared';
import type { BufferedResponse, GatewayContext } from './context.js';
import { downstreamResponseHeaders } from './headers.js';
import { streamBody, writeBody, type BodyProducer, type BodySink, type BodySource } from './stream-body.js';

/** What an upstream (direct HTTP or the connect tunnel) answers. */
export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as a stream (a direct upstream makes it only when it is read: upstream-http.ts). */
  body: Readable;
  /** A direct upstream's body handed to the body writer without a stream in between (upstream-http.ts). */
  attach?(sink: BodySink): BodySource;
}

/** Cap for responses buffered for response plugins; bigger ones fail closed. */
const MAX_BUFFERED_RESPONSE = 16 * 1024 * 1024;

function applyHeaderEdits(ctx: GatewayContext, headers: Record<string, string | string[]>): void {
  for (const k of ctx.responseHeaderEdits.remove) delete headers[k.toLowerCase()];
  for (const [k, v] of Object.entries(ctx.responseHeaderEdits.set)) headers[k.toLowerCase()] = v;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of body) {
      size += (c as Buffer).length;
      if (size > MAX_BUFFERED_RESPONSE) throw new OcteliumError('UPSTREAM_FAILED', 'response too large for response plugins');
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof OcteliumError) throw err;
    // A body the upstream cut is its failure (502), not the gateway's (500).
    throw new OcteliumError('UPSTREAM_FAILED', `upstream response ended early after ${size} bytes: ${(err as Error).message || String(err)}`);
  }
  return Buffer.concat(chunks);
}

/**
 * Sends the upstream response to the client. Streams chunk by chunk with backpressure — an SSE event
 * is written the moment it arrives, never buffered or compressed. Only when response plugins are
 * registered (and the response is not SSE) is the body buffered so they can edit it.
 */
export async function sendUpstreamResponse(ctx: GatewayContext, up: UpstreamResponse): Promise<void> {
  const headers = downstreamResponseHeaders(up.headers);
  const contentType = String(headers['content-type'] ?? '');
  const isSSE = contentType.startsWith('text/event-stream');
  ctx.responseContentType = contentType || undefined;
  const { res } = ctx;
  for (const t of ctx.responseTransforms ?? []) t.head?.(up.statusCode, headers);

  if (ctx.responseHooks.length && !isSSE) {
    const buffered: BufferedResponse = { status: up.statusCode, headers, body: await readAll(up.body) };
    for (const hook of ctx.responseHooks) await hook(buffered);
    delete buffered.headers['content-length'];
    delete buffered.headers['content-encoding'];
    buffered.headers['content-length'] = String(buffered.body.length);
    applyHeaderEdits(ctx, buffered.headers);
    ctx.responseStatus = buffered.status;
    ctx.responded = true;
    res.writeHead(buffered.status, buffered.headers);
    res.end(buffered.body);
    ctx.responseBytes = buffered.body.length;
    return;
  }

  applyHeaderEdits(ctx, headers);
  if (isSSE) {
    headers['cache-control'] ??= 'no-cache';
    headers['x-accel-buffering'] = 'no'; // tells any proxy in front of us not to buffer either
  }
  ctx.responseStatus = up.statusCode;
  ctx.responded = true;
  res.writeHead(up.statusCode, headers);
  if (isSSE) res.flushHeaders();
  const maps = isSSE ? (ctx.responseTransforms ?? []).flatMap((t) => (t.sse ? [t.sse()] : [])) : [];
  const streamed = up.attach ? writeBody(ctx, maps, up as BodyProducer) /* has attach */ : streamBody(ctx, up.body, maps);
  // Returned, not awaited: a held response (an idle SSE stream, for hours) keeps no suspended frame of this function
  // (nor of the upstream stage, which returns this promise too), only the body writer's listeners and closures.
  return streamed.then(() => void res.end(), (err: unknown) => {
    throw bodyFailure(ctx, err);
  });
}

/** What a body that did not end cleanly is in the AccessLog. */
function bodyFailure(ctx: GatewayContext, err: unknown): unknown {
  // The client went away (499), or a response plugin failed: not the upstream's doing.
  if (ctx.abort.signal.aborted || err instanceof OcteliumError) return err;
  // The upstream (or the agent's tunnel) cut the body after the status line went out. Say so in the AccessLog:
  // otherwise a cut stream looks like a gateway fault, or like a complete response with the same status.
  const reason = (err as Error).message || (err as { code?: string }).code || String(err);
  return new OcteliumError('UPSTREAM_FAILED', `upstream response ended early after ${ctx.responseBytes} bytes: ${reason}`);
}
