import { fetch as undiciFetch, type RequestInit } from 'undici';

/**
 * Outbound requests to IdentityProviders (discovery, JWKS, token, user info, SAML metadata). The URLs are set by
 * an admin, so they may point anywhere, loopback included (unlike client-supplied URLs such as CIMD, which go
 * through net/ssrf.ts). What is still bounded is what a slow or broken IdP can cost the cluster: time, bytes,
 * and redirects (none are followed).
 */
export const IDP_FETCH_TIMEOUT_MS = 5_000;
export const IDP_MAX_RESPONSE_BYTES = 512 * 1024;

export class IdpFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdpFetchError';
  }
}

export interface LimitedFetchOptions { timeoutMs?: number; maxBytes?: number }

/**
 * A Fetch API-compatible function (openid-client's and jose's `customFetch`) that aborts after `timeoutMs`,
 * refuses bodies past `maxBytes` (declared or streamed) and never follows redirects.
 */
export function limitedFetch(opts: LimitedFetchOptions = {}) {
  const timeoutMs = opts.timeoutMs ?? IDP_FETCH_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? IDP_MAX_RESPONSE_BYTES;
  return async (url: string | URL, init: { method?: string; headers?: unknown; body?: unknown; signal?: AbortSignal | null } = {}): Promise<Response> => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let res;
    try {
      res = await undiciFetch(url, { method: init.method, headers: init.headers, body: init.body, redirect: 'manual', signal } as RequestInit);
    } catch (e) {
      if (timeout.aborted) throw new IdpFetchError(`${new URL(String(url)).origin} did not answer within ${timeoutMs} ms`);
      throw new IdpFetchError(`${new URL(String(url)).origin} unreachable (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw new IdpFetchError(`${new URL(String(url)).origin} answered ${declared} bytes (limit ${maxBytes})`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body ?? []) {
        size += chunk.byteLength;
        if (size > maxBytes) throw new IdpFetchError(`${new URL(String(url)).origin} answered more than ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    } catch (e) {
      if (e instanceof IdpFetchError) throw e;
      throw new IdpFetchError(`${new URL(String(url)).origin}: response cut (${timeout.aborted ? 'timeout' : (e as Error).message})`);
    }
    // A global Response, as openid-client/oauth4webapi check `instanceof Response`.
    return new Response(res.status === 204 || res.status === 304 ? null : Buffer.concat(chunks), { status: res.status, statusText: res.statusText, headers: res.headers as unknown as Headers });
  };
}
