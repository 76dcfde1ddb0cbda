import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { CancelController, type OcteliumError, type Resource, type ServiceConfig } from '@octelium-ts/shared';
import type { Principal } from '../auth/principal.js';
import type { RequestFacts } from './request-facts.js';
import type { ServiceEntry } from './service-index.js';
import { RequestBody } from './request-body.js';

export interface PluginRun { name: string; type: string; outcome: string; error?: string }

/** A response as plugins see it; hooks may change any part. */
export interface BufferedResponse { status: number; headers: Record<string, string | string[]>; body: Buffer }
export type ResponseHook = (r: BufferedResponse) => Promise<void>;

/** Shapes a proxied response without buffering it (MCP: session binding on the head, per-event SSE rewriting). */
export interface ResponseTransform {
  /** Sees, and may edit, the upstream status and headers before they are written. */
  head?(status: number, headers: Record<string, string | string[]>): void;
  /** SSE responses only: a map of the body, made when the body starts; see BodyMap. */
  sse?(): BodyMap;
}

/**
 * Maps a streamed response body chunk by chunk, synchronously (gateway/stream-body.ts drives it from the body's
 * events). A held SSE stream keeps only this object and its few listeners alive, not a chain of async iterators.
 */
export interface BodyMap {
  /** What to send on for one upstream chunk: every complete unit (SSE event) at once, never held for a later one. */
  map(chunk: Buffer): Buffer[];
  /** What is left when the upstream body ends. */
  end(): Buffer[];
  /** Sent on after the upstream stayed silent for `ms` (an SSE comment), and again every `ms` while it does. */
  idle?: { ms: number; chunk: Buffer };
}

export interface Decision { allowed: boolean; reason: { type: string; details?: Record<string, unknown> } }

/**
 * One gateway request. Every field a stage may fill is declared here (style.md §4); stages never attach ad-hoc
 * properties. A class, so the per-request object gets its shape from one constructor and the body views are
 * prototype accessors (an object literal with getters allocated three closures per request).
 */
export class RequestContext {
  /** Epoch milliseconds at the start (a number: the AccessLog formats it, and a Date per request was garbage). */
  readonly startedAt = Date.now();
  /** `performance.now()` at the start: durations (metrics, spans) without a second clock read per hook. */
  readonly startedAtMs = performance.now();
  /**
   * randomUUID() concatenates its result from 20 pieces: a tree of string nodes (~480 B) kept as long as the request,
   * hours for a held SSE stream. toLowerCase() makes it one flat 58-byte string (the UUID is lowercase already).
   */
  readonly requestId = randomUUID().toLowerCase();
  /** The one owner of the request body (request-body.ts); `body`, `bodyMap` and `parsedBody` are views of it. */
  readonly requestBody: RequestBody;
  /** Path + query forwarded upstream (no-DNS prefix removed; plugins may rewrite it). */
  upstreamPath: string;
  serviceName: string;
  namespaceName: string;
  entry?: ServiceEntry;
  service?: Resource;
  namespace?: Resource;
  /** The config in effect: `spec.config`, or the dynamicConfig one a rule picked. */
  config?: ServiceConfig;
  /** The `dynamicConfig.configs[].name` a rule picked (its `http.plugins` are the ones that run). */
  dynamicConfigName?: string;
  principal?: Principal;
  /**
   * Set when this request is a member hop of a federated MCP Service (mcp/federation): the federated Service and
   * the id of the downstream request it serves, for the AccessLog.
   */
  federation?: { service: Resource; requestId: string };
  anonymous = false;
  /** JSON-RPC `id` of the request, when it was one (for JSON-RPC-shaped error bodies). */
  jsonRpcId?: string | number | null;
  facts?: RequestFacts;
  decision?: Decision;
  /** Response headers edits from Service config and plugins, applied when the response head is written. */
  responseHeaderEdits: { set: Record<string, string>; remove: string[] } = { set: {}, remove: [] };
  plugins: PluginRun[] = [];
  /** Work plugins registered for the response (Lua onResponse, ExtProc); they need a buffered, non-SSE body. */
  responseHooks: ResponseHook[] = [];
  /** Streaming response transforms (see ResponseTransform); applied in order. */
  responseTransforms?: ResponseTransform[];
  /** Cleanup to run when the request ends (e.g. close an ExtProc stream). */
  cleanups: Array<() => void> = [];
  /** Set once a response (error, direct plugin, proxied) has started. */
  responded = false;
  requestBytes = 0;
  responseStatus = 0;
  responseBytes = 0;
  responseContentType?: string;
  responseBodyMap?: unknown;
  error?: OcteliumError;
  /** Aborted when the client goes away; aborts the upstream request. */
  readonly abort = new CancelController();

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    target: { service: string; namespace: string; path: string },
    /** Request headers to send upstream (lower-case keys). */
    public upstreamHeaders: Record<string, string | string[]>,
  ) {
    this.requestBody = new RequestBody(req);
    this.upstreamPath = target.path;
    this.serviceName = target.service;
    this.namespaceName = target.namespace;
  }

  /** The body's bytes once read (buffering, small JSON, plugins); assigning one is a plugin's rewrite. */
  get body(): Buffer | undefined {
    return this.requestBody.bytes;
  }

  set body(bytes: Buffer | undefined) {
    this.requestBody.replace(bytes ?? Buffer.alloc(0));
  }

  /** The parsed body where policies may see it (`body.mode: JSON`, MCP); assigning exposes a parsed value. */
  get bodyMap(): unknown {
    return this.requestBody.map;
  }

  set bodyMap(value: unknown) {
    this.requestBody.expose(value);
  }

  /** The parsed body for the gateway's own use (JSON-RPC id, MCP checks), exposed or not; read-only. */
  get parsedBody(): unknown {
    return this.requestBody.parsed();
  }
}

/** What stages, hooks and plugins see of one request: the context itself. */
export type GatewayContext = RequestContext;
