import { z } from 'zod';
import { Authorization, Condition, Duration, KeyValue, Name, NAME_RE, SecretRef } from './common.js';

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
/** `svc` or `svc.ns`: a member Service of a federation (same spelling as `metadata.name`). */
const ServiceRefName = z.string().refine((n) => {
  const parts = n.split('.');
  return parts.length <= 2 && parts.every((p) => NAME_RE.test(p));
}, 'a Service name is "svc" or "svc.namespace" (lower-case letters, digits and "-")');

/** Glob over (prefixed) primitive names: `*` any run of characters, `?` one character; nothing else is special. */
const NameGlob = z.string().min(1).max(256);

/**
 * One member of a federated MCP Service (design.md §10): its tools and prompts appear under `prefix` + their name
 * (resources keep their URIs), and every call is authorized by the member's own policies for the caller.
 */
export const MCPFederationMember = z.strictObject({
  service: ServiceRefName,
  /** Prepended to the member's tool and prompt names; may be empty (then its names pass unchanged). */
  prefix: z.string().max(64).regex(/^[A-Za-z0-9_.-]*$/, 'a prefix is letters, digits, "_", "-" and "."').default(''),
});
export type MCPFederationMember = z.infer<typeof MCPFederationMember>;

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
  /** Federate these MCP Services behind this one endpoint (docs/mcp.md "Federation"). */
  federation: z
    .array(MCPFederationMember)
    .min(1)
    .max(32)
    .superRefine((members, ctx) => {
      const seen = new Map<string, number>();
      const prefixes = new Map<string, number>();
      members.forEach((m, i) => {
        const canonical = m.service.replace(/\.default$/, '');
        if (seen.has(canonical)) ctx.addIssue({ code: 'custom', path: [i, 'service'], message: `Service "${m.service}" is already member [${seen.get(canonical)}]` });
        else seen.set(canonical, i);
        // Calls are routed by prefix: two members with one prefix could not be told apart.
        if (prefixes.has(m.prefix)) ctx.addIssue({ code: 'custom', path: [i, 'prefix'], message: `prefix "${m.prefix}" is already used by member [${prefixes.get(m.prefix)}]` });
        else prefixes.set(m.prefix, i);
      });
    })
    .optional(),
  /** Which (prefixed) tools a federated Service offers: `include` globs (default all), then `exclude` globs. */
  tools: z.strictObject({ include: z.array(NameGlob).max(256).optional(), exclude: z.array(NameGlob).max(256).optional() }).optional(),
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
