import { z } from 'zod';
import { Authorization, Condition, Duration, KeyValue, Name, SecretRef } from './common.js';

export const Upstream = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).optional(),
  /** The User whose `octelium connect --serve` agent serves this upstream from its own host. */
  user: Name.optional(),
  container: z
    .strictObject({
      image: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      args: z.array(z.string()).optional(),
      command: z.array(z.string()).optional(),
      env: z.array(z.strictObject({ name: z.string(), value: z.string().optional(), fromSecret: Name.optional() })).optional(),
      credentials: z
        .strictObject({ usernamePassword: z.strictObject({ username: z.string(), password: SecretRef }) })
        .optional(),
      resourceLimit: z
        .strictObject({
          cpu: z.strictObject({ millicores: z.number().int().positive() }).optional(),
          memory: z.strictObject({ megabytes: z.number().int().positive() }).optional(),
        })
        .optional(),
      replicas: z.number().int().positive().optional(),
    })
    .optional(),
  loadbalance: z
    .strictObject({ endpoints: z.array(z.strictObject({ url: z.url(), user: Name.optional() })).min(1) })
    .optional(),
});
export type Upstream = z.infer<typeof Upstream>;

/** Upstream credential injection. `bearer.fromSecret` is the product brief's shape; `bearer.accessToken.fromSecret` Octelium's. */
export const HTTPAuth = z.strictObject({
  bearer: z.strictObject({ fromSecret: Name.optional(), accessToken: SecretRef.optional() }).optional(),
  basic: z.strictObject({ username: z.string(), password: SecretRef }).optional(),
  custom: z.strictObject({ header: z.string().min(1), value: SecretRef }).optional(),
  oauth2ClientCredentials: z
    .strictObject({
      tokenURL: z.url(),
      clientID: z.string().min(1),
      clientSecret: SecretRef,
      scopes: z.array(z.string()).optional(),
    })
    .optional(),
});
export type HTTPAuth = z.infer<typeof HTTPAuth>;

export const Plugin = z.strictObject({
  name: z.string().min(1),
  isDisabled: z.boolean().optional(),
  /** Lower phases run first; equal phases keep their written order. */
  phase: z.number().int().optional(),
  condition: Condition.optional(),
  lua: z
    .strictObject({
      inline: z.string().min(1),
      timeout: Duration.optional(),
      /**
       * Let the script's http.client reach loopback, private and link-local addresses (169.254.169.254 …).
       * Off by default: only public addresses and `<svc>.svc` Service names (docs/policies.md).
       */
      allowPrivateNetworks: z.boolean().optional(),
    })
    .optional(),
  extProc: z
    .strictObject({
      address: z.string().min(1),
      processingMode: z
        .strictObject({
          requestHeaderMode: z.enum(['DEFAULT', 'SEND', 'SKIP']).optional(),
          responseHeaderMode: z.enum(['DEFAULT', 'SEND', 'SKIP']).optional(),
          requestBodyMode: z.enum(['NONE', 'BUFFERED']).optional(),
          responseBodyMode: z.enum(['NONE', 'BUFFERED']).optional(),
        })
        .optional(),
      messageTimeout: Duration.optional(),
    })
    .optional(),
  direct: z
    .strictObject({
      statusCode: z.number().int().min(100).max(599).default(200),
      body: z.strictObject({ inline: z.string() }).optional(),
      headers: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  path: z.strictObject({ addPrefix: z.string().optional(), removePrefix: z.string().optional() }).optional(),
});
export type Plugin = z.infer<typeof Plugin>;

export const HTTPConfig = z.strictObject({
  enableRequestBuffering: z.boolean().optional(),
  body: z
    .strictObject({
      mode: z.enum(['MODE_UNSET', 'JSON']).optional(),
      maxRequestSize: z.number().int().positive().optional(),
    })
    .optional(),
  auth: HTTPAuth.optional(),
  header: z
    .strictObject({
      addRequestHeaders: z.array(KeyValue).optional(),
      removeRequestHeaders: z.array(z.string()).optional(),
      addResponseHeaders: z.array(KeyValue).optional(),
      removeResponseHeaders: z.array(z.string()).optional(),
    })
    .optional(),
  plugins: z.array(Plugin).optional(),
  /** Whole-request upstream timeout (headers and idle body); SSE streams are only bounded by idleness. */
  timeout: Duration.optional(),
  /** Capture JSON response bodies (and JSON-RPC results in SSE events) into AccessLogs. */
  visibility: z
    .strictObject({
      captureResponseBody: z.boolean().optional(),
      /** JSON paths in the request/response bodyMap replaced by "[REDACTED]" in AccessLogs (e.g. `params.arguments.password`, `**.token`). */
      redactPaths: z.array(z.string().min(1)).optional(),
      /** Header names whose values (and same-named JSON keys) are scrubbed from AccessLogs, on top of the cluster-wide list. */
      redactHeaders: z.array(z.string().min(1)).optional(),
    })
    .optional(),
});
export type HTTPConfig = z.infer<typeof HTTPConfig>;

export const ServiceConfig = z.strictObject({
  name: z.string().optional(),
  upstream: Upstream.optional(),
  http: HTTPConfig.optional(),
});
export type ServiceConfig = z.infer<typeof ServiceConfig>;

/**
 * MCP awareness (docs/mcp.md). A Service with `mode: MCP` or with this block is an MCP resource server:
 * OAuth 401 challenges and Protected Resource Metadata, token audience and scope checks, Origin/Host checks,
 * session binding, protocol header checks, per-caller list filtering and SSE keep-alives.
 */
export const MCPConfig = z.strictObject({
  /** Scopes named in the 401 challenge and in the Protected Resource Metadata; a token that carries a `scope` claim must hold them all. Default `["mcp"]`. */
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope is printable ASCII without spaces, quotes or backslashes')).optional(),
  /** More accepted token audiences (e.g. an external IdP's audience value), besides this Service's own URLs. */
  audiences: z.array(z.string().min(1)).optional(),
  /** Refuse tokens without an `aud` claim (cluster-wide Octelium tokens). Default false. */
  requireAudience: z.boolean().optional(),
  /** Browser origins allowed besides the request's own origin: exact `scheme://host[:port]`, or `"*"`. */
  allowedOrigins: z.array(z.string().min(1)).optional(),
  /** Rewrite tools/prompts/resources lists to what the caller's policies allow. Default true. */
  filterLists: z.boolean().optional(),
  /** Idle time after which a `:` comment line is sent on downstream SSE streams. Default 25 s; zero disables. */
  keepAlive: Duration.optional(),
});
export type MCPConfig = z.infer<typeof MCPConfig>;

export const ServiceModes = ['HTTP', 'WEB', 'GRPC', 'KUBERNETES', 'SSH', 'POSTGRES', 'MYSQL', 'TCP', 'UDP', 'DNS', 'MCP', 'LLM'] as const;

export const ServiceSpec = z.strictObject({
  port: z.number().int().min(1).max(65535).optional(),
  mode: z.enum(ServiceModes).default('HTTP'),
  isPublic: z.boolean().optional(),
  isAnonymous: z.boolean().optional(),
  isTLS: z.boolean().optional(),
  isDisabled: z.boolean().optional(),
  authorization: Authorization.optional(),
  config: ServiceConfig.optional(),
  mcp: MCPConfig.optional(),
  dynamicConfig: z
    .strictObject({
      configs: z.array(ServiceConfig.extend({ name: z.string().min(1) })).default([]),
      rules: z.array(z.strictObject({ condition: Condition, configName: z.string().min(1) })).default([]),
    })
    .optional(),
});
export type ServiceSpec = z.infer<typeof ServiceSpec>;
