import type { Agent } from 'undici';
import type { AbortSignalLike, AccessLog, Condition, Plugin, Resource } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { IdentityService } from '../auth/identity.js';
import type { AccessLogStore } from '../accesslog/store.js';
import type { Decision, GatewayContext } from './context.js';
import type { RequestFacts } from './request-facts.js';
import type { ServiceIndex } from './service-index.js';
import type { UpstreamAuth } from './upstream-auth.js';
import type { UpstreamResponse } from './proxy.js';
import type { ListenerLimits } from '../server/limits.js';
import type { Faults } from '../server/faults.js';
import type { BrowserAuth } from '../web/browser-auth.js';
import type { ContainerEndpoints } from '../containers/endpoints.js';

/** The connect tunnel as the gateway sees it (implemented by the tunnel hub). */
export interface TunnelDispatcher {
  dispatch(userName: string, req: {
    service: string; upstreamURL: string; method: string; path: string;
    headers: Record<string, string | string[]>; body?: NodeJS.ReadableStream; signal?: AbortSignalLike;
  }): Promise<UpstreamResponse>;
}

/** A plugin kind with code behind it (Lua, ExtProc); direct/path are built into the plugins stage. */
export interface PluginRuntime {
  type: string;
  applies(p: Plugin): boolean;
  /** Runs the request phase; may stop the request by throwing an OcteliumError, and may register response hooks. */
  onRequest(p: Plugin, ctx: GatewayContext): Promise<void>;
}

/**
 * Extension points for subsystems that watch or shape every request without owning a stage
 * (telemetry, MCP awareness). Each hook is optional; hooks must not throw.
 */
export interface GatewayHooks {
  /** Right after the context is created (e.g. start a span, add `traceparent` to ctx.upstreamHeaders). */
  onRequest?(ctx: GatewayContext): void;
  /** Extra headers for an error response (e.g. an MCP `WWW-Authenticate` with resource_metadata on 401). */
  errorHeaders?(ctx: GatewayContext, status: number): Record<string, string> | undefined;
  /** After the response ended, with the AccessLog that was recorded (already redacted). */
  onResponse?(ctx: GatewayContext, log: AccessLog): void;
}

export type GatewayStage = (ctx: GatewayContext) => void | Promise<void>;

export interface GatewayDeps {
  store: ResourceStore;
  identity: IdentityService;
  accessLogs: AccessLogStore;
  index: ServiceIndex;
  upstreamAuth: UpstreamAuth;
  authorize(facts: RequestFacts): Decision;
  selectDynamicConfig(service: Resource, facts: RequestFacts): string | undefined;
  /** A plugin condition's result; `error` when it could not be evaluated (missing input is not an error, it is false). */
  evaluateCondition(cond: Condition, facts: RequestFacts): { matched: boolean; error?: { code: string; message: string } };
  pluginRuntimes: PluginRuntime[];
  tunnel?: TunnelDispatcher;
  /** Ready replicas of managed containers (`upstream.container`); absent when the cluster runs no container runtime. */
  containers?: ContainerEndpoints;
  /**
   * An upstream served inside the cluster (MCP federation): returns the response when it serves this request's
   * Service, undefined otherwise. Runs in the upstream stage, after policies and plugins.
   */
  localUpstream?: (ctx: GatewayContext) => Promise<UpstreamResponse> | undefined;
  agent?: Agent;
  /** Body cap for streamed requests, in-flight cap per user, trusted proxy hops (defaults: server/limits.ts). */
  limits?: ListenerLimits;
  /** The `octelium_auth` browser cookie as a credential, CSRF check and login redirect (design.md §7). */
  browser?: BrowserAuth;
  /** Where unexpected exceptions are counted (internal errors answered with 500). */
  faults?: Faults;
}
