import type { GatewayContext } from '../gateway/context.js';
import { buildFacts } from '../gateway/facts.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import type { PolicyEngine, RuleResult } from '../policy/index.js';

export type Primitive = 'tool' | 'prompt' | 'resource';

/** The request that would use a primitive: what a policy sees when the caller actually calls it. */
export function syntheticUse(kind: Primitive, key: string, meta?: unknown): Record<string, unknown> {
  const m = meta === undefined ? {} : { _meta: meta };
  if (kind === 'tool') return { jsonrpc: '2.0', id: 0, method: 'tools/call', params: { name: key, arguments: {}, ...m } };
  if (kind === 'prompt') return { jsonrpc: '2.0', id: 0, method: 'prompts/get', params: { name: key, arguments: {}, ...m } };
  return { jsonrpc: '2.0', id: 0, method: 'resources/read', params: { uri: key, ...m } };
}

/** Facts for a synthetic request on the caller's behalf: same user, session, Service and path; another body. */
export function syntheticFacts(base: RequestFacts, body: Record<string, unknown>, mirrorHeaders: boolean): RequestFacts {
  const headers = { ...base.request.http.headers };
  const params = body.params as { name?: string; uri?: string };
  if (mirrorHeaders) {
    headers['mcp-method'] = String(body.method);
    const name = params.name ?? params.uri;
    if (name === undefined) delete headers['mcp-name'];
    else headers['mcp-name'] = name;
  }
  return { ...base, request: { http: { ...base.request.http, method: 'POST', headers, bodyMap: body, body: JSON.stringify(body) } } };
}

/**
 * "Could this caller use X?" for list filtering, from the caller's real policies evaluated on a synthetic
 * `tools/call` / `prompts/get` / `resources/read`. The synthetic call has no arguments, so a rule that depends
 * on them cannot be decided: it reads missing input (false, see policy/cel.ts isMissingInput) or errors, and
 * counts as "maybe" — such an ALLOW keeps the entry listed, such a DENY does not hide it. Only a DENY that
 * matched without either, or no ALLOW that could match, hides it.
 * The real call is still authorized with its real arguments: hiding is not the access control.
 */
export class Visibility {
  readonly #cache = new Map<string, boolean>();
  readonly #base: RequestFacts;
  readonly #meta: unknown;
  readonly #mirror: boolean;
  /** True once any policy applied: the list then depends on who asks (2026 `cacheScope: private`). */
  callerDependent = false;

  constructor(private readonly policy: PolicyEngine, ctx: GatewayContext, meta?: unknown) {
    this.#base = buildFacts(ctx);
    this.#meta = meta;
    this.#mirror = ctx.req.headers['mcp-method'] !== undefined;
  }

  visible(kind: Primitive, key: string): boolean {
    const k = `${kind}\n${key}`;
    let v = this.#cache.get(k);
    if (v === undefined) {
      v = this.#decide(syntheticFacts(this.#base, syntheticUse(kind, key, this.#meta), this.#mirror));
      this.#cache.set(k, v);
    }
    return v;
  }

  /**
   * Whether the caller may list this kind at all. A primitive is "hidden" only from someone who can see the
   * list; a caller refused the whole Service gets the plain 403, not a made-up "unknown tool".
   */
  canList(kind: Primitive): boolean {
    const method = kind === 'tool' ? 'tools/list' : kind === 'prompt' ? 'prompts/list' : 'resources/list';
    const meta = this.#meta === undefined ? {} : { _meta: this.#meta };
    return this.policy.authorize(syntheticFacts(this.#base, { jsonrpc: '2.0', id: 0, method, params: meta }, this.#mirror)).allowed;
  }

  #decide(facts: RequestFacts): boolean {
    const d = this.policy.explain(facts);
    if (d.reason.type === 'NO_POLICY_ATTACHED') return true;
    this.callerDependent = true;
    if (d.allowed) return true;
    const undecided = (r: RuleResult) => r.error !== undefined || r.missing !== undefined;
    if (d.rules.some((r) => r.effect === 'DENY' && r.matched && !undecided(r))) return false;
    return d.rules.some((r) => r.effect === 'ALLOW' && (r.matched || undecided(r)));
  }
}
