import { OcteliumError } from '@octelium-ts/shared';
import type { Decision, GatewayContext } from '../gateway/context.js';
import type { GatewayStage } from '../gateway/deps.js';
import { buildFacts } from '../gateway/facts.js';
import { bufferLimit, readLimited } from '../gateway/stages/buffer.js';
import { asMessage, idKey, isObject, respondRpcError, rpcIdOf, RpcCode, type JsonRpcMessage } from './jsonrpc.js';
import { LIST_METHODS } from './list-filter.js';
import { batchesAllowed, eraOf, headerMismatch, type Era } from './protocol.js';
import { registerTransforms } from './response-transforms.js';
import type { ListMethod } from './sessions.js';
import { mcpSettings } from './settings.js';
import { corsOf, headerValue, ownerOf, type McpStageDeps } from './stage-deps.js';
import { syntheticFacts, Visibility, type Primitive } from './visibility.js';

/** The JSON-RPC body of an MCP POST, read whole if the buffer stage left it streaming, and parsed. */
async function parseBody(ctx: GatewayContext): Promise<unknown> {
  if (ctx.bodyMap !== undefined) return ctx.bodyMap;
  const bytes = ctx.body ?? await readLimited(ctx, bufferLimit(ctx));
  if (!bytes.length) return undefined;
  try {
    // Policies and the AccessLog see MCP bodies as if the Service buffered JSON (body.mode: JSON).
    ctx.requestBody.json();
    ctx.requestBody.expose();
  } catch {
    respondRpcError(ctx, 400, null, RpcCode.PARSE_ERROR, 'Parse error', new OcteliumError('INVALID_JSON', 'request body is not valid JSON'), undefined, corsOf(ctx));
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
  const headers = corsOf(ctx);
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
  return function mcpProtocol(ctx: GatewayContext): void | Promise<void> {
    const settings = mcpSettings(ctx.entry!.spec);
    // Not an MCP Service: no async frame and promise for it.
    if (settings) return checkMcpRequest(d, ctx, settings);
  };
}

async function checkMcpRequest(d: McpStageDeps, ctx: GatewayContext, settings: NonNullable<ReturnType<typeof mcpSettings>>): Promise<void> {
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
      return respondRpcError(ctx, 400, null, RpcCode.INVALID_REQUEST, why, new OcteliumError('INVALID_ARGUMENT', why), undefined, corsOf(ctx));
    }
    if (!ctx.anonymous) ctx.decision = decideBatch(d, ctx, body);
    for (const el of body) if (isObject(el)) track(el as JsonRpcMessage);
  } else if (isObject(body)) {
    const m = body as JsonRpcMessage;
    if (era.modern) {
      const mismatch = headerMismatch(ctx.req.headers, m);
      if (mismatch) return respondRpcError(ctx, 400, rpcIdOf(m), RpcCode.HEADER_MISMATCH, `HeaderMismatch: ${mismatch}`, new OcteliumError('MCP_HEADER_MISMATCH', mismatch), undefined, corsOf(ctx));
    }
    const use = ctx.anonymous ? undefined : useOf(m);
    if (use) {
      // The facts are final here (body parsed, no plugin ran yet): the authorize stage reuses them and their CEL activation.
      const decision = use.decides ? d.authorize((ctx.facts ??= buildFacts(ctx))) : undefined;
      if (decision) ctx.decision = decision; // the authorize stage reuses it
      if ((!decision || !decision.allowed) && !visibility().visible(use.kind, use.key) && visibility().canList(use.kind)) {
        return unknownPrimitive(ctx, m, use.kind, use.key, era, decision);
      }
    }
    track(m);
  }
  registerTransforms(d, ctx, settings, { service, owner, sid, era, method, filtering, lists, visibility });
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
