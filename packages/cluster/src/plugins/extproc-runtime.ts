import type { Plugin } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { PluginRuntime } from '../gateway/deps.js';
import { flatHeaders } from '../gateway/headers.js';
import { respondFromPlugin } from '../gateway/plugin-responses.js';
import { bufferLimit, readLimited } from '../gateway/stages/buffer.js';
import type { ExtProcClientPool } from './extproc/index.js';

/** Request headers as Envoy hands them to an ExtProc server: pseudo-headers first, then the rest. */
function requestHeaders(ctx: GatewayContext): Record<string, string> {
  return {
    ':method': ctx.req.method ?? 'GET',
    ':path': ctx.upstreamPath,
    ':authority': ctx.req.headers.host ?? '',
    ':scheme': 'http',
    ...flatHeaders(ctx.upstreamHeaders),
  };
}

/** Envoy ExtProc plugins in the gateway: one gRPC Process stream per request (plugins/extproc does the protocol). */
export class ExtProcRuntime implements PluginRuntime {
  readonly type = 'extProc';
  // grpc-js and the proto files load on first use: most clusters have no ExtProc plugin, and start-up time matters.
  #pool: Promise<ExtProcClientPool> | undefined;
  #poolFor(): Promise<ExtProcClientPool> {
    return (this.#pool ??= import('./extproc/index.js').then((m) => new m.ExtProcClientPool()));
  }

  applies(p: Plugin): boolean {
    return Boolean(p.extProc);
  }

  async onRequest(p: Plugin, ctx: GatewayContext): Promise<void> {
    const cfg = p.extProc!;
    const mode = cfg.processingMode ?? {};
    const exchange = (await this.#poolFor()).open(cfg, ctx.abort.signal);
    ctx.cleanups.push(() => exchange.close());
    if (mode.requestBodyMode === 'BUFFERED' && !ctx.body) await readLimited(ctx, bufferLimit(ctx));
    const result = await exchange.onRequest({ headers: requestHeaders(ctx), body: ctx.body });
    if (result.kind === 'immediate') return respondFromPlugin(ctx, result.status, result.headers, result.body);
    if (result.headersChanged) {
      const next: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(result.headers)) if (!k.startsWith(':')) next[k] = v;
      ctx.upstreamHeaders = next;
      if (result.headers[':path']) ctx.upstreamPath = result.headers[':path'];
    }
    if (result.bodyChanged) ctx.body = result.body ?? Buffer.alloc(0);
    // Response phase (Envoy's default sends response headers); SSE responses are never buffered, so it is skipped for them.
    if (mode.responseHeaderMode === 'SKIP' && mode.responseBodyMode !== 'BUFFERED') return;
    ctx.responseHooks.push(async (r) => {
      const res = await exchange.onResponse({ status: r.status, headers: flatHeaders(r.headers), body: mode.responseBodyMode === 'BUFFERED' ? r.body : undefined });
      if (res.kind === 'immediate') {
        r.status = res.status;
        r.headers = { ...res.headers };
        r.body = res.body;
        return;
      }
      if (res.status) r.status = res.status;
      if (res.headersChanged) r.headers = { ...res.headers };
      if (res.bodyChanged) r.body = res.body ?? Buffer.alloc(0);
    });
  }

  close(): void {
    void this.#pool?.then((p) => p.close());
  }
}
