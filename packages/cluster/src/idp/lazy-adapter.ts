import type { BrowserLoginAdapter } from './types.js';

/**
 * An adapter whose module (and its library: openid-client, node-saml) is loaded on first use. Most clusters have no
 * IdentityProvider of a given type, and loading all three libraries cost ~80 ms of every cluster start.
 */
export function lazyAdapter(type: BrowserLoginAdapter['type'], load: () => Promise<BrowserLoginAdapter>): BrowserLoginAdapter {
  let adapter: Promise<BrowserLoginAdapter> | undefined;
  const get = () => (adapter ??= load());
  return {
    type,
    start: async (p) => (await get()).start(p),
    finish: async (p) => (await get()).finish(p),
    probe: async () => (await get()).probe(),
  };
}
