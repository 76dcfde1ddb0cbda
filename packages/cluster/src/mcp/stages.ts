import { OcteliumError } from '@octelium-ts/shared';
import type { BufferedResponse, Decision, GatewayContext, ResponseTransform } from '../gateway/context.js';
import type { GatewayStage } from '../gateway/deps.js';
import { buildFacts } from '../gateway/facts.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import { DEFAULT_MAX_REQUEST_SIZE, readLimited } from '../gateway/stages/buffer.js';
import type { ResourceIndicators } from '../oauth/index.js';
import type { PolicyEngine } from '../policy/index.js';
import { asMessage, idKey, isObject, respondRpcError, rpcIdOf, RpcCode, type JsonRpcMessage } from './jsonrpc.js';
import { LIST_METHODS, rewriteMessages } from './list-filter.js';
import { checkHostAndOrigin, corsHeaders, preflightHeaders } from './origin.js';
import { protectedResourceMetadata, sendMetadata } from './prm.js';
import { batchesAllowed, eraOf, headerMismatch, type Era } from './protocol.js';
import { mcpState } from './request-state.js';
import { PRM_PREFIX, resourceOfMetadataRequest } from './resource-url.js';
import type { ListMethod, SessionBindings } from './sessions.js';
import { mcpSettings, type McpSettings } from './settings.js';
import { mapSseEvents, withData } from './sse.js';
import { syntheticFacts, Visibility, type Primitive } from './visibility.js';

export interface McpStageDeps {
  /** The gateway's own authorization decision function (the same one the authorize stage calls). */
  authorize(facts: RequestFacts): Decision;
  /** For `explain`: list visibility needs every rule's outcome, not only the decision. */
  policy: PolicyEngine;
  resources: ResourceIndicators;
  sessions: SessionBindings;
  clusterUrl: () => string;
}

function headerValue(ctx: GatewayContext, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Who owns sessions created by this request: the user behind the token (never anything the client says). */
function ownerOf(ctx: GatewayContext): string {
  return ctx.principal ? `user:${ctx.principal.user.metadata.uid}` : 'anonymous';
}

/**
 * After route, before authentication — what must work without (or before checking) a credential:
 * Host/Origin (DNS rebinding → 403), CORS preflight, and RFC 9728 metadata on the Service host.
 */
export function mcpEdgeStage(d: McpStageDeps): GatewayStage {
  return function mcpEdge(ctx: GatewayContext): void {
    const settings = mcpSettings(ctx.entry!.spec);
    if (!settings) return;
    const problem = checkHostAndOrigin(ctx.req, settings, d.clusterUrl());
    if (problem) throw new OcteliumError('ORIGIN_NOT_ALLOWED', problem);
    mcpState(ctx).originOk = true;
    const origin = headerValue(ctx, 'origin');
    if (ctx.req.method === 'OPTIONS' && origin && ctx.req.headers['access-control-request-method']) {
      respondDirect(ctx, 204, preflightHeaders(origin));
      return;
    }
    const path = (ctx.req.url ?? '/').split('?')[0];
    if ((ctx.req.method === 'GET' || ctx.req.method === 'OPTIONS') && (path === PRM_PREFIX || path.startsWith(PRM_PREFIX + '/'))) {
      const doc = protectedResourceMetadata(resourceOfMetadataRequest(ctx.req, d.clusterUrl()), d.clusterUrl(), settings, ctx.service!.metadata.name);
      sendMetadata(ctx.req, ctx.res, doc);
      ctx.responded = true;
      ctx.responseStatus = ctx.res.statusCode;
      ctx.responseContentType = 'application/json';
    }
  };
}

function respondDirect(ctx: GatewayContext, status: number, headers: Record<string, string>): void {
  ctx.responded = true;
  ctx.responseStatus = status;
  ctx.res.writeHead(status, { ...headers, 'content-length': '0' }).end();
}

/**
 * RFC 8707 / RFC 9068 audience on every request, for every Service: a token minted for specific resources
 * (`aud`) is good only at those; cluster-wide tokens (no `aud`) keep working everywhere unless the Service sets
 * `mcp.requireAudience`. MCP Services also check the token's scopes (403 insufficient_scope → step-up).
 */
export function audienceStage(d: McpStageDeps): GatewayStage {
  return function audience(ctx: GatewayContext): void {
    const p = ctx.principal;
    if (!p) return;
    const spec = ctx.entry!.spec;
    const name = ctx.service!.metadata.name;
    const settings = mcpSettings(spec);
    if (p.audience ? !p.audience.some((a) => d.resources.audienceMatches(a, name, spec)) : settings?.requireAudience) {
      const description = p.audience ? `the token was issued for another resource, not Service "${name}"` : `Service "${name}" requires an audience-bound token`;
      mcpState(ctx).challenge = { error: 'invalid_token', description };
      throw new OcteliumError('UNAUTHENTICATED', description);
    }
    if (settings && p.scopes) {
      const missing = settings.scopes.filter((s) => !p.scopes!.includes(s));
      if (missing.length) {
        const description = `the token lacks scope ${missing.join(' ')}`;
        mcpState(ctx).challenge = { error: 'insufficient_scope', description, scopes: [...new Set([...p.scopes, ...settings.scopes])] };
        throw new OcteliumError('INSUFFICIENT_SCOPE', description);
      }
    }
  };
}

/** The JSON-RPC body of an MCP POST, read whole if the buffer stage left it streaming, and parsed. */
async function parseBody(ctx: GatewayContext): Promise<unknown> {
  if (ctx.bodyMap !== undefined) return ctx.bodyMap;
  ctx.body ??= await readLimited(ctx, ctx.config?.http?.body?.maxRequestSize ?? DEFAULT_MAX_REQUEST_SIZE);
  if (!ctx.body.length) return undefined;
  try {
    // Policies and the AccessLog see MCP bodies as if the Service buffered JSON (body.mode: JSON).
    ctx.bodyMap = JSON.parse(ctx.body.toString('utf8'));
  } catch {
    respondRpcError(ctx, 400, null, RpcCode.PARSE_ERROR, 'Parse error', new OcteliumError('INVALID_JSON', 'request body is not valid JSON'));
  }
  return ctx.bodyMap;
}

/** The primitive a request uses, when it names one a policy can be asked about. */
function useOf(m: JsonRpcMessage): { kind: Primitive; key: string; decides: boolean } | undefined {
  const p = m.params ?? {};
  switch (m.method) {
    case 'tools/call': return typeof p.name === 'string' ? { kind: 'tool', key: p.name, decides: true } : undefined;
    case 'prompts/get': return typeof p.name === 'string' ? { kind: 'prompt', key: p.name, decides: true } : undefined;
    case 'resources/read': return typeof p.uri === 'string' ? { kind: 'resource', key: p.uri, decides: true } : undefined;
    // These act on a primitive without being its use: only its visibility is checked.
    case 'resources/subscribe': return typeof p.uri === 'string' ? { kind: 'resource', key: p.uri, decides: false } : undefined;
    case 'completion/complete': {
      const ref = isObject(p.ref) ? p.ref : {};
      if (ref.type === 'ref/prompt' && typeof ref.name === 'string') return { kind: 'prompt', key: ref.name, decides: false };
      return undefined;
    }
  }
  return undefined;
}

/** The JSON-RPC error a server gives for a primitive it does not have (mcp-spec.md §5.6). */
function unknownPrimitive(ctx: GatewayContext, m: JsonRpcMessage, kind: Primitive, key: string, era: Era, decision: Decision | undefined): void {
  if (decision) ctx.decision = decision;
  const err = new OcteliumError('POLICY_DENIED', `${kind} "${key}" is hidden from this caller by policy`);
  const headers = corsHeaders(mcpState(ctx).originOk ? headerValue(ctx, 'origin') : undefined);
  if (kind === 'resource' && !era.modern) return respondRpcError(ctx, 200, rpcIdOf(m), RpcCode.RESOURCE_NOT_FOUND, 'Resource not found', err, { uri: key }, headers);
  return respondRpcError(ctx, 200, rpcIdOf(m), RpcCode.INVALID_PARAMS, `Unknown ${kind}: ${key}`, err, undefined, headers);
}

/**
 * After buffering, before authorize: the MCP protocol checks and per-caller shaping of one request.
 * Session binding (404), 2026 mirror headers (400 / -32020), batches (2025-03-26 only, each element
 * authorized), hidden primitives answered as unknown, and the response transforms (session bookkeeping,
 * list filtering in JSON and SSE, keep-alives).
 */
export function mcpProtocolStage(d: McpStageDeps): GatewayStage {
  return async function mcpProtocol(ctx: GatewayContext): Promise<void> {
    const settings = mcpSettings(ctx.entry!.spec);
    if (!settings) return;
    // Responses may be rewritten; compressed ones could not be, so ask the upstream for identity.
    ctx.upstreamHeaders['accept-encoding'] = 'identity';
    const service = ctx.service!.metadata.name;
    const owner = ownerOf(ctx);
    const method = ctx.req.method ?? 'GET';
    let body: unknown;
    if (method === 'POST' && String(ctx.req.headers['content-type'] ?? '').includes('json')) {
      body = await parseBody(ctx);
      if (ctx.responded) return;
    }
    const era = eraOf(ctx.req.headers, body);
    const sid = era.modern ? undefined : headerValue(ctx, 'mcp-session-id');
    // The same answer for "never seen" and "someone else's": a session id must not be probeable.
    if (sid && d.sessions.check(service, sid, owner) !== 'ok') throw new OcteliumError('MCP_SESSION_NOT_FOUND', 'Session not found');

    const filtering = settings.filterLists && !ctx.anonymous;
    let vis: Visibility | undefined;
    const visibility = () => (vis ??= new Visibility(d.policy, ctx, era.modern ? asMessage(body)?.params?._meta : undefined));
    const lists = new Map<string, ListMethod>();
    const track = (m: JsonRpcMessage) => {
      const k = idKey(m.id);
      if (!k || typeof m.method !== 'string' || !LIST_METHODS.has(m.method)) return;
      lists.set(k, m.method as ListMethod);
      if (sid && filtering) d.sessions.trackList(service, sid, k, m.method as ListMethod);
    };

    if (Array.isArray(body)) {
      if (!batchesAllowed(era) || !body.length) {
        const why = body.length ? `JSON-RPC batches are not allowed in protocol version ${era.version}` : 'empty JSON-RPC batch';
        return respondRpcError(ctx, 400, null, RpcCode.INVALID_REQUEST, why, new OcteliumError('INVALID_ARGUMENT', why));
      }
      if (!ctx.anonymous) ctx.decision = decideBatch(d, ctx, body);
      for (const el of body) if (isObject(el)) track(el as JsonRpcMessage);
    } else if (isObject(body)) {
      const m = body as JsonRpcMessage;
      if (era.modern) {
        const mismatch = headerMismatch(ctx.req.headers, m);
        if (mismatch) return respondRpcError(ctx, 400, rpcIdOf(m), RpcCode.HEADER_MISMATCH, `HeaderMismatch: ${mismatch}`, new OcteliumError('MCP_HEADER_MISMATCH', mismatch));
      }
      const use = ctx.anonymous ? undefined : useOf(m);
      if (use) {
        const decision = use.decides ? d.authorize(buildFacts(ctx)) : undefined;
        if (decision) ctx.decision = decision; // the authorize stage reuses it
        if ((!decision || !decision.allowed) && !visibility().visible(use.kind, use.key)) return unknownPrimitive(ctx, m, use.kind, use.key, era, decision);
      }
      track(m);
    }
    registerTransforms(d, ctx, settings, { service, owner, sid, era, method, filtering, lists, visibility });
  };
}

/** 2025-03-26 batch: every request in it is authorized on its own; one denial rejects the batch. */
function decideBatch(d: McpStageDeps, ctx: GatewayContext, batch: unknown[]): Decision | undefined {
  const base = buildFacts(ctx);
  let first: Decision | undefined;
  for (const el of batch) {
    if (!isObject(el) || typeof el.method !== 'string') continue; // responses to server requests carry no method
    const decision = d.authorize(syntheticFacts(base, el, false));
    if (!decision.allowed) return decision;
    first ??= decision;
  }
  return first;
}

interface RequestInfo {
  service: string;
  owner: string;
  sid?: string;
  era: Era;
  method: string;
  filtering: boolean;
  lists: Map<string, ListMethod>;
  visibility: () => Visibility;
}

function registerTransforms(d: McpStageDeps, ctx: GatewayContext, settings: McpSettings, r: RequestInfo): void {
  const origin = mcpState(ctx).originOk ? headerValue(ctx, 'origin') : undefined;
  /** Which tracked list request a response id answers: this request's own, or one of the session's (resumed streams). */
  const methodOf = (id: unknown): ListMethod | undefined => {
    const k = idKey(id);
    if (!k) return undefined;
    const own = r.lists.get(k);
    const fromSession = r.sid ? d.sessions.takeList(r.service, r.sid, k) : undefined;
    return own ?? fromSession;
  };
  const transform: ResponseTransform = {
    head(status, headers) {
      for (const [k, v] of Object.entries(corsHeaders(origin))) {
        headers[k] = k === 'vary' && headers.vary ? `${String(headers.vary)}, ${v}` : v;
      }
      const issued = headers['mcp-session-id'];
      if (typeof issued === 'string' && status >= 200 && status < 300 && !r.era.modern) d.sessions.bind(r.service, issued, r.owner);
      if (r.sid && (status === 404 || (r.method === 'DELETE' && status >= 200 && status < 300))) d.sessions.forget(r.service, r.sid);
    },
  };
  const rewrite = r.filtering
    ? (data: string, raw?: string): string | undefined => {
      if (!data.includes('"result"')) return undefined;
      let msg: unknown;
      try {
        msg = JSON.parse(data);
      } catch {
        return undefined;
      }
      const out = rewriteMessages(msg, methodOf, r.visibility(), r.era.modern);
      if (out === undefined) return undefined;
      return raw === undefined ? JSON.stringify(out) : withData(raw, JSON.stringify(out));
    }
    : undefined;
  if (rewrite || settings.keepAliveMs > 0) {
    transform.sse = (body) => mapSseEvents(body, rewrite && ((ev) => (ev.data ? rewrite(ev.data, ev.raw) : undefined)), settings.keepAliveMs);
  }
  (ctx.responseTransforms ??= []).push(transform);
  // JSON list responses are small: buffer them (only them) so the list can be rewritten and re-measured.
  if (rewrite && r.lists.size) {
    ctx.responseHooks.push(async (res: BufferedResponse) => {
      if (!String(res.headers['content-type'] ?? '').includes('json')) return;
      const out = rewrite(res.body.toString('utf8'));
      if (out !== undefined) res.body = Buffer.from(out);
    });
  }
}
