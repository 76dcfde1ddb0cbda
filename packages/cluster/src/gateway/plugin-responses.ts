import type { GatewayContext } from './context.js';

/** A plugin answers the client itself (ExtProc immediate response, Lua exit with a body, direct response). */
export function respondFromPlugin(ctx: GatewayContext, status: number, headers: Record<string, string>, body: Buffer | string): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const h: Record<string, string> = { ...headers, 'content-length': String(buf.length) };
  ctx.responded = true;
  ctx.responseStatus = status;
  ctx.responseBytes = buf.length;
  ctx.responseContentType = h['content-type'] ?? h['Content-Type'];
  ctx.res.writeHead(status, h);
  ctx.res.end(buf);
}
