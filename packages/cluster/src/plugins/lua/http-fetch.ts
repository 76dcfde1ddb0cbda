import { request } from 'undici';
import type { LuaHttpRequest, LuaHttpResponse } from './types.js';

/** Responses larger than this are refused: the body is handed to the script as one Lua string. */
export const MAX_HTTP_RESPONSE_BYTES = 4 * 1024 * 1024;

/** Default http.client transport: undici with the call's timeout and a response size cap. */
export async function defaultHttpFetch(req: LuaHttpRequest): Promise<LuaHttpResponse> {
  const res = await request(req.url, {
    method: req.method as 'GET',
    headers: req.headers,
    body: req.body,
    signal: AbortSignal.timeout(req.timeoutMs),
    headersTimeout: req.timeoutMs,
    bodyTimeout: req.timeoutMs,
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_HTTP_RESPONSE_BYTES) {
      res.body.destroy();
      throw new Error(`response larger than ${MAX_HTTP_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') };
}
