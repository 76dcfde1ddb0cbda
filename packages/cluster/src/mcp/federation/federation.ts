import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { canonicalServiceName, OcteliumError, parseJsonBytes, type MCPFederationMember } from '@octelium-ts/shared';
import type { GatewayContext } from '../../gateway/context.js';
import type { UpstreamResponse } from '../../gateway/proxy.js';
import type { ServiceIndex } from '../../gateway/service-index.js';
import { idKey, isObject, type JsonRpcMessage } from '../jsonrpc.js';
import { ownerOf } from '../stage-deps.js';
import type { HopGrants, } from './internal-hop.js';
import { MemberClient, type HopOptions } from './member-client.js';
import { FederatedSession, type MemberState } from './session.js';
import { decodeCursor, encodeCursor, routeName, routesBack, ToolFilter } from './names.js';
import { SseOut } from './sse-out.js';

export interface FederationDeps {
  index: ServiceIndex;
  grants: HopGrants;
  /** The cluster's own listener (loopback), where member requests enter the gateway. */
  selfURL: () => string;
  dispatcher: Dispatcher;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

type Hop = (m: MemberState) => HopOptions;

const MAX_SESSIONS = 10_000;
const IDLE_MS = 60 * 60_000;
/** A member that failed is left out this long before the next request tries it again. */
const DOWN_MS = 5_000;
const INIT_TIMEOUT_MS = 10_000;

const LISTS = {
  'tools/list': { field: 'tools', key: 'name' },
  'prompts/list': { field: 'prompts', key: 'name' },
  'resources/list': { field: 'resources', key: 'name' },
  'resources/templates/list': { field: 'resourceTemplates', key: 'name' },
} as const;
type ListMethod = keyof typeof LISTS;

const RPC = { INVALID_REQUEST: -32600, METHOD_NOT_FOUND: -32601, INVALID_PARAMS: -32602, INTERNAL: -32603 };

function json(status: number, body: unknown, headers: Record<string, string> = {}): UpstreamResponse {
  const text = body === undefined ? '' : JSON.stringify(body);
  return {
    statusCode: status,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'content-length': String(Buffer.byteLength(text)), ...headers },
    body: Readable.from(text ? [Buffer.from(text)] : []),
  };
}

function rpcError(id: unknown, code: number, message: string, data?: unknown): JsonRpcMessage {
  return { jsonrpc: '2.0', id: typeof id === 'string' || typeof id === 'number' ? id : null, error: { code, message, ...(data === undefined ? {} : { data }) } };
}

function sse(out: SseOut): UpstreamResponse {
  return { statusCode: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }, body: out.body };
}

/** Capabilities of the federated Service: the union of its members' (objects merged, flags OR-ed). */
export function unionCapabilities(all: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const merge = (into: Record<string, unknown>, from: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(from)) {
      if (isObject(v)) merge((into[k] = isObject(into[k]) ? into[k] : {}) as Record<string, unknown>, v);
      else if (typeof v === 'boolean') into[k] = into[k] === true || v;
      else if (!(k in into)) into[k] = v;
    }
  };
  for (const c of all) if (isObject(c)) merge(out, c);
  return out;
}

/**
 * The federated MCP endpoint (design.md §10, docs/mcp.md "Federation"): the gateway terminates MCP for a Service
 * with `mcp.federation`. Served as the Service's upstream (GatewayDeps.localUpstream), so the federated Service's
 * own policies, session binding, list filtering and AccessLog apply first; every member request then goes through
 * the gateway again as the caller (internal-hop.ts), so each member's do too.
 */
export class Federation {
  readonly #sessions = new Map<string, FederatedSession>();
  readonly #sweep: NodeJS.Timeout;
  /** Members whose failure was logged recently: one warning per outage, not one per request. */
  readonly #warned = new Map<string, number>();

  constructor(private readonly d: FederationDeps) {
    this.#sweep = setInterval(() => this.#expire(), 60_000).unref();
  }

  close(): void {
    clearInterval(this.#sweep);
    for (const s of this.#sessions.values()) this.#end(s);
    this.#sessions.clear();
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** GatewayDeps.localUpstream: serves the request when its Service is federated. */
  handle(ctx: GatewayContext): Promise<UpstreamResponse> | undefined {
    const members = ctx.entry?.spec.mcp?.federation;
    if (!members) return undefined;
    return this.#serve(ctx, members);
  }

  async #serve(ctx: GatewayContext, members: MCPFederationMember[]): Promise<UpstreamResponse> {
    const method = ctx.req.method ?? 'GET';
    const sidHeader = ctx.req.headers['mcp-session-id'];
    const sid = typeof sidHeader === 'string' ? sidHeader : undefined;
    const sess = sid ? this.#sessions.get(sid) : undefined;
    if (sess && (sess.owner !== ownerOf(ctx) || sess.service !== ctx.service!.metadata.name)) {
      return json(404, rpcError(null, RPC.INVALID_REQUEST, 'Session not found'));
    }
    if (sess) {
      sess.lastUsed = Date.now();
      sess.principal = ctx.principal;
    }
    const hop = this.#hops(ctx);
    if (method === 'POST') return this.#post(ctx, members, sess, sid, hop);
    if (!sid) return json(400, rpcError(null, RPC.INVALID_REQUEST, 'Bad Request: Mcp-Session-Id header is required'));
    if (!sess) return json(404, rpcError(null, RPC.INVALID_REQUEST, 'Session not found'));
    if (method === 'GET') return this.#get(ctx, sess, hop);
    if (method === 'DELETE') {
      this.#sessions.delete(sess.id);
      await this.#end(sess, hop);
      return json(200, undefined);
    }
    return json(405, rpcError(null, RPC.INVALID_REQUEST, 'Method not allowed'), { allow: 'GET, POST, DELETE' });
  }

  /** One grant per member for this downstream request, revoked when the request ends. */
  #hops(ctx: GatewayContext): Hop {
    const issued = new Map<string, string>();
    return (m: MemberState) => {
      let grant = issued.get(m.name);
      if (!grant) {
        const g = this.d.grants.issue({ principal: ctx.principal, federated: ctx.service!, member: m.name, requestId: ctx.requestId });
        ctx.cleanups.push(g.revoke);
        issued.set(m.name, (grant = g.token));
      }
      return { grant, signal: ctx.abort.abortSignal };
    };
  }

  async #post(ctx: GatewayContext, members: MCPFederationMember[], sess: FederatedSession | undefined, sid: string | undefined, hop: Hop): Promise<UpstreamResponse> {
    let body: unknown = ctx.bodyMap ?? ctx.parsedBody;
    if (body === undefined && ctx.body?.length) {
      try {
        body = parseJsonBytes(ctx.body);
      } catch {
        return json(400, rpcError(null, -32700, 'Parse error'));
      }
    }
    if (Array.isArray(body)) return json(400, rpcError(null, RPC.INVALID_REQUEST, 'JSON-RPC batches are not supported by federated MCP Services'));
    if (!isObject(body) || body.jsonrpc !== '2.0') return json(400, rpcError(null, RPC.INVALID_REQUEST, 'Invalid Request: expected one JSON-RPC 2.0 message'));
    const msg = body as JsonRpcMessage;
    const hasId = typeof msg.id === 'string' || typeof msg.id === 'number';
    if (msg.method === 'initialize') {
      if (!hasId) return json(400, rpcError(null, RPC.INVALID_REQUEST, 'initialize must be a request'));
      return this.#initialize(ctx, members, msg, hop);
    }
    if (!sid) return json(400, rpcError(msg.id, RPC.INVALID_REQUEST, 'Bad Request: Mcp-Session-Id header is required'));
    if (!sess) return json(404, rpcError(msg.id, RPC.INVALID_REQUEST, 'Session not found'));
    if (msg.method === undefined) {
      // The client's answer to a relayed server→client request.
      const k = idKey(msg.id);
      const to = k ? sess.serverRequests.get(k) : undefined;
      if (to && to.member.client && ('result' in msg || 'error' in msg)) {
        sess.serverRequests.delete(k!);
        const answer = 'error' in msg ? { jsonrpc: '2.0', id: to.memberId, error: msg.error } : { jsonrpc: '2.0', id: to.memberId, result: msg.result };
        await to.member.client.send(answer, hop(to.member)).catch((err: Error) => this.#warn(to.member, 'relaying a response failed', err.message));
      }
      return json(202, undefined);
    }
    if (typeof msg.method !== 'string') return json(400, rpcError(msg.id, RPC.INVALID_REQUEST, 'Invalid Request: method must be a string'));
    if (!hasId) {
      await this.#notification(sess, msg, hop);
      return json(202, undefined);
    }
    return this.#request(ctx, sess, msg, hop);
  }

  async #initialize(ctx: GatewayContext, members: MCPFederationMember[], msg: JsonRpcMessage, hop: Hop): Promise<UpstreamResponse> {
    const p = msg.params ?? {};
    // Loaded on the first federated initialize: the SDK's types module (its zod schemas) is ~80 ms of cluster start.
    const { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } = await import('@modelcontextprotocol/sdk/types.js');
    const asked = typeof p.protocolVersion === 'string' ? p.protocolVersion : LATEST_PROTOCOL_VERSION;
    const version = SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION;
    const path = ctx.upstreamPath.split('?')[0] || '/';
    const sess = new FederatedSession(
      randomUUID(), ctx.service!.metadata.name, ownerOf(ctx), path, ctx.principal,
      { protocolVersion: version, capabilities: isObject(p.capabilities) ? p.capabilities : {}, clientInfo: isObject(p.clientInfo) ? p.clientInfo : { name: 'unknown', version: '0' } },
      members.map((cfg) => ({ cfg, name: canonicalServiceName(cfg.service) })),
    );
    // Members are opened now because the answer needs their capabilities; one that is down is left out and
    // tried again on later requests.
    await Promise.all(sess.members.map((m) => this.#open(sess, m, hop)));
    const caps = unionCapabilities(sess.members.map((m) => m.init?.capabilities));
    // Members come and go: the federated lists can change even when no member's does.
    if (isObject(caps.tools)) caps.tools.listChanged = true;
    if (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.values().next().value!;
      this.#sessions.delete(oldest.id);
      void this.#end(oldest);
    }
    this.#sessions.set(sess.id, sess);
    const result = { protocolVersion: version, capabilities: caps, serverInfo: { name: sess.service, title: `${sess.service} (federated MCP Service)`, version: '0.1.0' } };
    return json(200, { jsonrpc: '2.0', id: msg.id, result }, { 'mcp-session-id': sess.id });
  }

  /** The member's session, opening it on first use (initialize with the client's own parameters). */
  #open(sess: FederatedSession, m: MemberState, hop: Hop): Promise<MemberClient | undefined> {
    if (m.client) return Promise.resolve(m.client);
    if (m.downUntil && m.downUntil > Date.now()) return Promise.resolve(undefined);
    return (m.opening ??= this.#initMember(sess, m, hop).finally(() => (m.opening = undefined)));
  }

  async #initMember(sess: FederatedSession, m: MemberState, hop: Hop): Promise<MemberClient | undefined> {
    const entry = this.d.index.get(m.name);
    const down = (why: string, warn = true) => {
      m.downUntil = Date.now() + DOWN_MS;
      if (warn) this.#warn(m, why);
      return undefined;
    };
    if (!entry || entry.spec.isDisabled) return down('no such Service');
    if (entry.spec.mcp?.federation) return down('a federated Service cannot be a member (no nesting)');
    const origin = this.d.selfURL();
    const client = new MemberClient(m.name, { origin, path: `/svc/${m.name}${sess.path}`, dispatcher: this.d.dispatcher, userAgent: `octelium-federation/${sess.service}` });
    const id = sess.nextMemberId();
    const h = hop(m);
    const timeout = AbortSignal.timeout(INIT_TIMEOUT_MS);
    const signal = h.signal ? AbortSignal.any([h.signal, timeout]) : timeout;
    try {
      const ex = await client.exchange({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: sess.client.protocolVersion, capabilities: sess.client.capabilities, clientInfo: sess.client.clientInfo } }, { ...h, signal });
      let answer: JsonRpcMessage | undefined;
      for await (const r of ex.messages) if (r.id === id && r.method === undefined) answer = r;
      if (!answer || !isObject(answer.result)) {
        const why = isObject(answer?.error) ? String(answer.error.message) : `HTTP ${ex.status}`;
        // A member that refuses this caller (401/403) is policy, not an outage: left out without a warning.
        return down(`initialize failed: ${why}`, ex.status !== 401 && ex.status !== 403);
      }
      client.protocolVersion = typeof answer.result.protocolVersion === 'string' ? answer.result.protocolVersion : sess.client.protocolVersion;
      await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' }, h);
      m.client = client;
      m.init = answer.result;
      m.downUntil = undefined;
      this.#warned.delete(m.name);
      if (sess.getStream) this.#listen(sess, m, hop);
      return client;
    } catch (err) {
      return down(`unreachable: ${(err as Error).message}`);
    }
  }

  #warn(m: MemberState, why: string, detail?: string): void {
    const last = this.#warned.get(m.name) ?? 0;
    if (Date.now() - last < 30_000) return;
    this.#warned.set(m.name, Date.now());
    this.d.log('federation: member left out; its tools, prompts and resources are not listed and calls to it fail', { member: m.name, reason: why, ...(detail ? { detail } : {}) });
  }

  async #notification(sess: FederatedSession, msg: JsonRpcMessage, hop: Hop): Promise<void> {
    const p = msg.params ?? {};
    if (msg.method === 'notifications/cancelled') {
      const k = idKey(p.requestId);
      const f = k ? sess.inflight.get(k) : undefined;
      if (!f || !f.member.client) return;
      sess.inflight.delete(k!);
      await f.member.client.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { ...p, requestId: f.memberId } }, hop(f.member)).catch(() => undefined);
      f.cancel.abort();
      return;
    }
    if (msg.method === 'notifications/roots/list_changed') {
      await Promise.all(sess.members.filter((m) => m.client).map((m) => m.client!.send(msg, hop(m)).catch(() => undefined)));
    }
    // notifications/initialized: each member got its own when its session opened. Others have no member.
  }

  async #request(ctx: GatewayContext, sess: FederatedSession, msg: JsonRpcMessage, hop: Hop): Promise<UpstreamResponse> {
    const method = msg.method as string;
    const p = isObject(msg.params) ? msg.params : {};
    if (method === 'ping') return json(200, { jsonrpc: '2.0', id: msg.id, result: {} });
    if (method in LISTS) return json(200, await this.#list(sess, method as ListMethod, msg, hop));
    if (method === 'logging/setLevel') {
      await Promise.all(sess.members.map(async (m) => {
        const c = await this.#open(sess, m, hop);
        if (c) for await (const _ of (await c.exchange({ jsonrpc: '2.0', id: sess.nextMemberId(), method, params: p }, hop(m))).messages) { /* drain */ }
      }));
      return json(200, { jsonrpc: '2.0', id: msg.id, result: {} });
    }
    const filter = new ToolFilter(ctx.entry!.spec.mcp?.tools);
    const members = sess.members.map((m) => m.cfg);
    const byName = (name: unknown, kind: 'tool' | 'prompt') => {
      if (typeof name !== 'string') return undefined;
      if (kind === 'tool' && !filter.offers(name)) return undefined;
      const r = routeName(members, name);
      return r && { member: sess.members.find((m) => m.cfg === r.member)!, name: r.name };
    };
    switch (method) {
      case 'tools/call':
      case 'prompts/get': {
        const kind = method === 'tools/call' ? 'tool' : 'prompt';
        const r = byName(p.name, kind);
        if (!r) return json(200, rpcError(msg.id, RPC.INVALID_PARAMS, `Unknown ${kind}: ${String(p.name)}`));
        return this.#forward(ctx, sess, r.member, { ...msg, params: { ...p, name: r.name } }, hop);
      }
      case 'completion/complete': {
        const ref = isObject(p.ref) ? p.ref : {};
        if (ref.type === 'ref/prompt') {
          const r = byName(ref.name, 'prompt');
          if (!r) return json(200, rpcError(msg.id, RPC.INVALID_PARAMS, `Unknown prompt: ${String(ref.name)}`));
          return this.#forward(ctx, sess, r.member, { ...msg, params: { ...p, ref: { ...ref, name: r.name } } }, hop);
        }
        return this.#byUri(ctx, sess, msg, typeof ref.uri === 'string' ? ref.uri : undefined, hop);
      }
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        return this.#byUri(ctx, sess, msg, typeof p.uri === 'string' ? p.uri : undefined, hop);
    }
    return json(200, rpcError(msg.id, RPC.METHOD_NOT_FOUND, `Method not found: ${method}`));
  }

  /** Requests that name a resource URI: its known owner, else each member in turn until one has it. */
  async #byUri(ctx: GatewayContext, sess: FederatedSession, msg: JsonRpcMessage, uri: string | undefined, hop: Hop): Promise<UpstreamResponse> {
    if (uri === undefined) return json(200, rpcError(msg.id, RPC.INVALID_PARAMS, 'Invalid params: uri is required'));
    const owner = sess.ownerOfUri(uri);
    if (owner) return this.#forward(ctx, sess, owner, msg, hop);
    for (const m of sess.members) {
      const c = await this.#open(sess, m, hop);
      if (!c) continue;
      const id = sess.nextMemberId();
      const ex = await c.exchange({ ...msg, id }, hop(m)).catch(() => undefined);
      if (!ex || ex.status >= 300) continue;
      for await (const r of ex.messages) {
        if (r.id === id && r.method === undefined && isObject(r.result)) {
          sess.learnUri(uri, m);
          return json(200, { ...r, id: msg.id });
        }
      }
    }
    return json(200, rpcError(msg.id, -32002, 'Resource not found', { uri }));
  }

  /**
   * Sends one request to its member and streams what comes back as downstream SSE, event by event: the member's
   * notifications (progress tokens are the client's own and pass unchanged), its server→client requests under
   * federation ids, and finally the response under the client's id. A refusal by the member's gateway (policy
   * 403, 401 …) is relayed with its status as a JSON-RPC error, and recorded on the federated AccessLog too.
   */
  async #forward(ctx: GatewayContext, sess: FederatedSession, m: MemberState, msg: JsonRpcMessage, hop: Hop, retried = false): Promise<UpstreamResponse> {
    const client = await this.#open(sess, m, hop);
    if (!client) return json(200, rpcError(msg.id, RPC.INTERNAL, `member Service "${m.name}" is unavailable`));
    const memberId = sess.nextMemberId();
    const cancel = new AbortController();
    const k = idKey(msg.id)!;
    const h = hop(m);
    const signal = h.signal ? AbortSignal.any([h.signal, cancel.signal]) : cancel.signal;
    let ex;
    try {
      ex = await client.exchange({ ...msg, id: memberId }, { ...h, signal });
    } catch (err) {
      m.client = undefined;
      m.downUntil = Date.now() + DOWN_MS;
      this.#warn(m, 'request failed', (err as Error).message);
      return json(200, rpcError(msg.id, RPC.INTERNAL, `member Service "${m.name}" failed: ${(err as Error).message}`));
    }
    if (ex.status === 404 && !retried) {
      // The member forgot its session (restart): open a new one once, transparently.
      for await (const _ of ex.messages) { /* drain */ }
      m.client = undefined;
      return this.#forward(ctx, sess, m, msg, hop, true);
    }
    if (ex.status >= 300) {
      let error: unknown;
      for await (const r of ex.messages) if (r.method === undefined && r.error !== undefined) error = r.error;
      const e = isObject(error) ? error : { code: RPC.INTERNAL, message: `member Service "${m.name}" answered HTTP ${ex.status}` };
      if (ex.status === 401 || ex.status === 403) {
        ctx.error = new OcteliumError('POLICY_DENIED', `member Service "${m.name}" refused the request: ${String(e.message)}`);
      }
      return json(ex.status, { jsonrpc: '2.0', id: msg.id, error: e });
    }
    const out = new SseOut();
    sess.inflight.set(k, { member: m, memberId, cancel });
    void (async () => {
      let answered = false;
      try {
        for await (const r of ex.messages) {
          if (r.method === undefined) {
            if (r.id !== memberId) continue;
            answered = true;
            await out.send({ ...r, id: msg.id as string | number });
            break;
          }
          if (typeof r.method !== 'string') continue;
          if (r.id !== undefined && r.id !== null) await out.send({ ...r, id: sess.mapServerRequest(m, r.id as string | number) });
          else await out.send(r);
        }
      } catch (err) {
        if (!cancel.signal.aborted && !ctx.abort.signal.aborted) this.#warn(m, 'stream failed', (err as Error).message);
      } finally {
        sess.inflight.delete(k);
        if (!answered && !cancel.signal.aborted) await out.send(rpcError(msg.id, RPC.INTERNAL, `member Service "${m.name}" ended the stream without a response`));
        out.end();
      }
    })();
    return sse(out);
  }

  /** One page of a merged list: a page of one member (in order), names prefixed and filtered. */
  async #list(sess: FederatedSession, method: ListMethod, msg: JsonRpcMessage, hop: Hop): Promise<JsonRpcMessage> {
    const p = isObject(msg.params) ? msg.params : {};
    const shape = LISTS[method];
    let pos = { m: 0 } as { m: number; c?: string };
    if (p.cursor !== undefined) {
      const c = decodeCursor(p.cursor, sess.members.length);
      if (!c) return rpcError(msg.id, RPC.INVALID_PARAMS, 'Invalid params: unknown cursor');
      pos = c;
    }
    const spec = this.d.index.get(sess.service)?.spec.mcp?.tools;
    const filter = new ToolFilter(spec);
    const cfgs = sess.members.map((m) => m.cfg);
    for (let i = pos.m; i < sess.members.length; i++) {
      const m = sess.members[i];
      const memberCursor = i === pos.m ? pos.c : undefined;
      const next = i + 1 < sess.members.length ? encodeCursor({ m: i + 1 }) : undefined;
      const client = await this.#open(sess, m, hop);
      if (!client) continue;
      const id = sess.nextMemberId();
      let result: Record<string, unknown> | undefined;
      try {
        const ex = await client.exchange({ jsonrpc: '2.0', id, method, params: { ...p, ...(memberCursor === undefined ? { cursor: undefined } : { cursor: memberCursor }) } }, hop(m));
        for await (const r of ex.messages) if (r.id === id && r.method === undefined && isObject(r.result)) result = r.result;
        if (ex.status === 404) m.client = undefined;
      } catch (err) {
        this.#warn(m, `${method} failed`, (err as Error).message);
      }
      if (!result) continue; // a member without this capability, or down: its part is empty
      const entries = Array.isArray(result[shape.field]) ? (result[shape.field] as unknown[]) : [];
      const kept: unknown[] = [];
      for (const e of entries) {
        if (!isObject(e) || typeof e[shape.key] !== 'string') continue;
        const own = e[shape.key] as string;
        if (method === 'resources/list' && typeof e.uri === 'string') sess.learnUri(e.uri, m);
        if (method === 'resources/templates/list' && typeof e.uriTemplate === 'string') sess.learnTemplate(e.uriTemplate, m);
        if (method === 'tools/list' || method === 'prompts/list') {
          const name = m.cfg.prefix + own;
          if (!routesBack(cfgs, m.cfg, own)) continue; // another member's prefix shadows it: it could not be called
          if (method === 'tools/list' && !filter.offers(name)) continue;
          kept.push({ ...e, name });
        } else kept.push(m.cfg.prefix ? { ...e, name: m.cfg.prefix + own } : e);
      }
      const memberNext = typeof result.nextCursor === 'string' ? encodeCursor({ m: i, c: result.nextCursor }) : next;
      return { jsonrpc: '2.0', id: msg.id as string | number, result: { [shape.field]: kept, ...(memberNext ? { nextCursor: memberNext } : {}) } };
    }
    return { jsonrpc: '2.0', id: msg.id as string | number, result: { [shape.field]: [] } };
  }

  /** The downstream GET stream: server-initiated messages of every open member, list changes coalesced. */
  #get(ctx: GatewayContext, sess: FederatedSession, hop: Hop): UpstreamResponse {
    if (sess.getStream && !sess.getStream.ended) return json(409, rpcError(null, RPC.INVALID_REQUEST, 'Conflict: only one SSE stream is allowed per session'));
    const out = new SseOut();
    sess.getStream = out;
    for (const m of sess.members) m.listening = false;
    ctx.abort.signal.addEventListener('abort', () => out.end(), { once: true });
    out.body.once('close', () => {
      if (sess.getStream === out) sess.getStream = undefined;
    });
    for (const m of sess.members) if (m.client) this.#listen(sess, m, hop);
    return sse(out);
  }

  #listen(sess: FederatedSession, m: MemberState, hop: Hop): void {
    const out = sess.getStream;
    if (!out || m.listening || !m.client) return;
    m.listening = true;
    const changed = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      for (const method of changed) void out.send({ jsonrpc: '2.0', method });
      changed.clear();
    };
    void (async () => {
      try {
        for await (const r of m.client!.listen(hop(m))) {
          if (out.ended) break;
          if (typeof r.method !== 'string') continue;
          if (r.id !== undefined && r.id !== null) await out.send({ ...r, id: sess.mapServerRequest(m, r.id as string | number) });
          else if (r.method.endsWith('/list_changed')) {
            // Several members changing at once are one change to the client.
            changed.add(r.method);
            timer ??= setTimeout(flush, 50);
          } else await out.send(r);
        }
      } catch {
        /* the member ended its stream; the downstream stream stays */
      } finally {
        m.listening = false;
      }
    })();
  }

  async #end(sess: FederatedSession, hop?: Hop): Promise<void> {
    sess.getStream?.end();
    for (const f of sess.inflight.values()) f.cancel.abort();
    const principal = sess.principal;
    await Promise.all(sess.members.map(async (m) => {
      if (!m.client) return;
      let h: HopOptions | undefined = hop?.(m);
      let revoke: (() => void) | undefined;
      if (!h) {
        const service = this.d.index.get(sess.service)?.service;
        if (!service) return;
        const g = this.d.grants.issue({ principal, federated: service, member: m.name, requestId: 'session-end' });
        h = { grant: g.token };
        revoke = g.revoke;
      }
      if (h) await m.client.close({ grant: h.grant });
      revoke?.();
      m.client = undefined;
    }));
  }

  #expire(): void {
    const cutoff = Date.now() - IDLE_MS;
    for (const s of this.#sessions.values()) {
      if (s.lastUsed >= cutoff || s.getStream) continue;
      this.#sessions.delete(s.id);
      void this.#end(s);
    }
  }
}
