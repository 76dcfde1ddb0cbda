import { Agent, request } from 'undici';
import { SsrfError, checkUrlHost, guardedConnector, type GuardOptions } from '../../net/ssrf.js';
import type { LuaHttpRequest, LuaHttpResponse } from './types.js';

/** Responses larger than this are refused: the body is handed to the script as one Lua string. */
export const MAX_HTTP_RESPONSE_BYTES = 4 * 1024 * 1024;

export type LuaHttpFetch = (req: LuaHttpRequest) => Promise<LuaHttpResponse>;

/**
 * An http.client transport: undici with the call's timeout and a response size cap, behind the SSRF guard of
 * net/ssrf.ts. A script's URLs are chosen at run time (often from request data), so by default they may only
 * reach public addresses: no loopback, private, link-local (169.254.169.254, fd00:ec2::254: cloud metadata) or
 * unspecified (0.0.0.0) ones — checked for IP literals before connecting and for DNS answers at connect time
 * (the connection goes to the address that was checked). `allowPrivateNetworks` is the explicit opt-in
 * (`lua.allowPrivateNetworks` on the plugin). `refusePeer` applies either way (the cluster's own listener).
 * Redirects are not followed (the script sees the 3xx), so a public URL cannot bounce the call inward.
 */
export function createHttpFetch(opts: GuardOptions = {}): LuaHttpFetch & { close(): Promise<void> } {
  const agent = new Agent({ connect: guardedConnector(opts) });
  const fetch = async (req: LuaHttpRequest): Promise<LuaHttpResponse> => {
    try {
      const url = new URL(req.url);
      checkUrlHost(url, opts);
      const res = await request(url, {
        dispatcher: agent,
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
    } catch (err) {
      const ssrf = err instanceof SsrfError ? err : (err as { cause?: unknown })?.cause instanceof SsrfError ? ((err as { cause: SsrfError }).cause) : undefined;
      if (!ssrf) throw err;
      const hint = opts.allowPrivateNetworks ? '' : ' (a plugin that must reach private networks needs lua.allowPrivateNetworks: true)';
      throw new SsrfError(`request refused: ${ssrf.message}${hint}`);
    }
  };
  return Object.assign(fetch, { close: () => agent.close() });
}

/** The default transport: public addresses only. */
export const defaultHttpFetch = createHttpFetch();
