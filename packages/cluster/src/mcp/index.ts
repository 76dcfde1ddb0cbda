import type { Sql } from '../store/sql.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayDeps, GatewayHooks, GatewayStage } from '../gateway/deps.js';
import type { ServiceIndex } from '../gateway/service-index.js';
import type { ResourceIndicators } from '../oauth/index.js';
import type { PolicyEngine } from '../policy/index.js';
import { routeRequest } from '../server/route-host.js';
import { mcpChallenge } from './challenge.js';
import { checkHostAndOrigin, corsHeaders } from './origin.js';
import { protectedResourceMetadata, sendMetadata } from './prm.js';
import { peekMcpState } from './request-state.js';
import { PRM_PREFIX, resourceOfMetadataRequest } from './resource-url.js';
import { SessionBindings } from './sessions.js';
import { mcpSettings } from './settings.js';
import { audienceStage } from './audience-stage.js';
import { mcpEdgeStage } from './edge-stage.js';
import { mcpProtocolStage } from './protocol-stage.js';
import { registerFederation } from './federation/index.js';

export { mcpSettings } from './settings.js';

export interface McpOptions {
  index: ServiceIndex;
  /** The gateway's decision function (timed for /metrics), for per-element decisions and list filtering. */
  authorize: GatewayDeps['authorize'];
  policy: PolicyEngine;
  resources: ResourceIndicators;
  clusterUrl: () => string;
  /** The cluster's own listener; federated Services send member requests through it (mcp/federation). */
  selfURL: () => string;
  /** A store shared with other replicas: MCP session bindings made on one are honoured by all. */
  sharedStore?: Sql;
}

export interface McpSubsystem {
  /** Stages for the gateway plan: Origin/Host checks, CORS preflight, RFC 9728 metadata, federation member hops … */
  stages: {
    /** After route, before authentication. */
    edge: GatewayStage[];
    /** After the body is buffered, before authorize: audience/scope and protocol checks (may decide per batch element). */
    beforeAuthorize: GatewayStage[];
  };
  /** MCP-shaped error headers (CORS, `WWW-Authenticate` with resource_metadata). */
  hooks: GatewayHooks[];
  /** Federated Services answered inside the cluster. */
  localUpstream: NonNullable<GatewayDeps['localUpstream']>;
  /** RFC 9728 documents for the no-DNS form, served on the cluster host by the authorization server's handler. */
  protectedResourceMetadata(req: IncomingMessage, res: ServerResponse, url: URL): boolean;
  sessions: SessionBindings;
  /** Ends federated sessions (and their member sessions). */
  close(): void;
}

/**
 * MCP awareness for Services marked `mode: MCP` (or with an `mcp:` block), docs/mcp.md: registers the gateway
 * stages and the error-header hook. Audience checks apply to every Service.
 */
export function registerMcp(o: McpOptions): McpSubsystem {
  const sessions = new SessionBindings(o.sharedStore);
  const d = { authorize: o.authorize, policy: o.policy, resources: o.resources, sessions, clusterUrl: o.clusterUrl };
  const federation = registerFederation({ index: o.index, clusterUrl: o.clusterUrl, selfURL: o.selfURL });
  const hook: GatewayHooks = {
    errorHeaders(ctx, status) {
      const settings = ctx.entry ? mcpSettings(ctx.entry.spec) : undefined;
      if (!settings) return undefined;
      const state = peekMcpState(ctx);
      const origin = ctx.req.headers.origin;
      const out: Record<string, string> = corsHeaders(state?.originOk ? origin : undefined);
      const challenge = mcpChallenge(ctx.req, o.clusterUrl(), settings, status, state);
      if (challenge) out['www-authenticate'] = challenge;
      return out;
    },
  };

  function protectedResourceMetadataNoDns(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const rest = url.pathname.slice(PRM_PREFIX.length);
    const clusterUrl = o.clusterUrl();
    const domainHost = new URL(clusterUrl).hostname;
    const t = routeRequest(domainHost, rest, domainHost);
    if (t.kind !== 'service') return false;
    const name = t.namespace === 'default' ? t.service : `${t.service}.${t.namespace}`;
    const entry = o.index.get(name);
    const settings = entry && !entry.spec.isDisabled ? mcpSettings(entry.spec) : undefined;
    if (!settings || checkHostAndOrigin({ headers: { host: req.headers.host } } as IncomingMessage, settings, clusterUrl)) return false;
    sendMetadata(req, res, protectedResourceMetadata(resourceOfMetadataRequest(req, clusterUrl), clusterUrl, settings, name));
    return true;
  }

  return {
    stages: { edge: [mcpEdgeStage(d), federation.memberHop], beforeAuthorize: [audienceStage(d), mcpProtocolStage(d)] },
    hooks: [hook],
    localUpstream: federation.localUpstream,
    protectedResourceMetadata: protectedResourceMetadataNoDns, sessions, close: () => federation.close(),
  };
}
