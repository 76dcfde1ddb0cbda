import { OcteliumError, durationMs, type Plugin } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { PluginRuntime } from '../gateway/deps.js';
import { flatHeaders } from '../gateway/headers.js';
import { respondFromPlugin } from '../gateway/plugin-responses.js';
import { bufferLimit, readLimited } from '../gateway/stages/buffer.js';
import type { ServiceIndex } from '../gateway/service-index.js';
import type { LuaPluginHost, LuaHttpRequest, LuaHttpResponse } from './lua/index.js';
import { createHttpFetch, type LuaHttpFetch } from './lua/http-fetch.js';
import { isLocalAddress } from '../net/ssrf.js';

/**
 * `http.client()` calls to `<svc>.<ns>.svc` / `<svc>.svc` reach that cluster Service's upstream directly,
 * like in-cluster DNS names: internal traffic, no gateway round trip, through `internal` — the upstream URL
 * is the admin's, often a private address, so the plugin's private-network opt-in does not apply to it.
 * A tunnelled upstream (`upstream.user`) lives on the agent's host, not here, so it is refused rather than
 * dialled locally. Other hosts go through `external` (the plugin's guard).
 */
export function clusterHttpFetch(index: ServiceIndex, external: LuaHttpFetch, internal: LuaHttpFetch = external) {
  return (req: LuaHttpRequest): Promise<LuaHttpResponse> => {
    const url = new URL(req.url);
    const m = /^([a-z0-9-]+)(?:\.([a-z0-9-]+))?\.svc$/.exec(url.hostname);
    if (!m) return external(req);
    const name = !m[2] || m[2] === 'default' ? m[1] : `${m[1]}.${m[2]}`;
    const upstream = index.get(name)?.spec.config?.upstream;
    if (upstream?.user) return Promise.reject(new Error(`cluster Service "${name}" is served through a tunnel (upstream.user); http.client cannot reach it`));
    if (!upstream?.url) return Promise.reject(new Error(`no cluster Service "${name}" with an upstream URL`));
    const base = new URL(upstream.url);
    const target = new URL(base.pathname.replace(/\/+$/, '') + url.pathname + url.search, base.origin);
    return internal({ ...req, url: target.toString() });
  };
}

/** Lua plugins in the gateway: request edits, exits and onResponse hooks (plugins/lua runs the scripts). */
export class LuaRuntime implements PluginRuntime {
  readonly type = 'lua';
  // wasmoon (Lua in WASM) loads on first use: most clusters have no Lua plugin, and start-up time matters.
  #host: Promise<LuaPluginHost> | undefined;

  readonly #transports: Array<LuaHttpFetch & { close(): Promise<void> }>;
  /** http.client for plugins without `allowPrivateNetworks` (public addresses only), and for those with it. */
  readonly #publicOnly: LuaHttpFetch;
  readonly #private: LuaHttpFetch;

  /**
   * `selfURL`: the cluster's own listener (known once it listens). No http.client call may reach it, opt-in or
   * not: a script calling back into the gateway or the API would loop or act with the cluster's network position.
   */
  constructor(private readonly index: ServiceIndex, selfURL: () => string = () => '') {
    const refusePeer = (address: string, port: number): string | undefined => {
      const self = selfURL();
      return self && port === Number(new URL(self).port) && isLocalAddress(address) ? `${address}:${port} is the cluster's own listener` : undefined;
    };
    const publicOnly = createHttpFetch({ refusePeer });
    const any = createHttpFetch({ allowPrivateNetworks: true, refusePeer });
    this.#transports = [publicOnly, any];
    this.#publicOnly = clusterHttpFetch(index, publicOnly, any);
    this.#private = clusterHttpFetch(index, any, any);
  }

  host(): Promise<LuaPluginHost> {
    return (this.#host ??= import('./lua/plugin-host.js').then((m) => new m.LuaPluginHost({ httpFetch: this.#publicOnly })));
  }

  applies(p: Plugin): boolean {
    return Boolean(p.lua);
  }

  async onRequest(p: Plugin, ctx: GatewayContext): Promise<void> {
    const script = p.lua!.inline;
    // Plugin names are unique per config, not per Service: a dynamic config may reuse one with another script.
    const key = `${ctx.entry!.versionKey}:${ctx.dynamicConfigName ?? ''}:${p.name}`;
    const timeoutMs = p.lua!.timeout ? durationMs(p.lua!.timeout, 50) : undefined;
    // Scripts read the body (octelium.req.getRequestBody), so it is buffered for them.
    if (!ctx.body && ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
      await readLimited(ctx, bufferLimit(ctx));
    }
    const state = { method: ctx.req.method ?? 'GET', path: ctx.upstreamPath, headers: flatHeaders(ctx.upstreamHeaders), body: ctx.body?.toString('utf8') };
    const host = await this.host();
    const httpFetch = p.lua!.allowPrivateNetworks ? this.#private : this.#publicOnly;
    const out = await host.runOnRequest(key, script, ctx.facts!, state, timeoutMs, httpFetch);
    if (out.kind === 'exit') {
      if (out.body !== undefined) return respondFromPlugin(ctx, out.status, { 'content-type': 'application/json' }, out.body);
      throw new OcteliumError('PLUGIN_EXIT', `request stopped by plugin "${p.name}" (status ${out.status})`, undefined, out.status);
    }
    if (out.headersChanged) ctx.upstreamHeaders = { ...state.headers };
    if (out.pathChanged) ctx.upstreamPath = state.path;
    if (out.bodyChanged) ctx.body = Buffer.from(state.body ?? '', 'utf8');
    if (!(await host.hasHook(key, script, 'onResponse'))) return;
    ctx.responseHooks.push(async (r) => {
      const rs = { status: r.status, headers: flatHeaders(r.headers), body: r.body.toString('utf8') };
      const res = await host.runOnResponse(key, script, ctx.facts!, rs, timeoutMs, httpFetch);
      if (res.kind === 'exit') {
        r.status = res.status;
        r.body = Buffer.from(res.body ?? '');
        return;
      }
      if (res.statusChanged) r.status = rs.status;
      if (res.headersChanged) r.headers = { ...rs.headers };
      if (res.bodyChanged) r.body = Buffer.from(rs.body ?? '', 'utf8');
    });
  }

  /** Drops compiled engines of a Service version that is gone. */
  evict(versionKey: string): void {
    // With the separator, evicting `uid@1` leaves `uid@10`'s engines alone.
    void this.#host?.then((h) => h.evict(`${versionKey}:`));
  }

  async close(): Promise<void> {
    await (await this.#host)?.close();
    await Promise.all(this.#transports.map((t) => t.close()));
  }
}

