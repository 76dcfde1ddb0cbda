/**
 * One error taxonomy for every process (style.md §5): a stable `code`, the HTTP status it maps to, the JSON-RPC
 * code where the spec has one (`rpc`; otherwise derived from the status, see `rpcCode`), whether it is a
 * denial (`denial`: the AccessLog says DENIED), and optional structured details. Tests assert on `code`, never on
 * message text.
 */
interface ErrorKind { code: string; status: number; rpc?: number; denial?: true }

export const ErrorCodes = {
  INVALID_ARGUMENT: { code: 'OCT_ERR_INVALID_ARGUMENT', status: 400 },
  UNAUTHENTICATED: { code: 'OCT_ERR_UNAUTHENTICATED', status: 401, denial: true },
  PERMISSION_DENIED: { code: 'OCT_ERR_PERMISSION_DENIED', status: 403, denial: true },
  POLICY_DENIED: { code: 'OCT_ERR_POLICY_DENIED', status: 403, denial: true },
  NOT_FOUND: { code: 'OCT_ERR_NOT_FOUND', status: 404 },
  SERVICE_NOT_FOUND: { code: 'OCT_ERR_SERVICE_NOT_FOUND', status: 404 },
  ALREADY_EXISTS: { code: 'OCT_ERR_ALREADY_EXISTS', status: 409 },
  CONFLICT: { code: 'OCT_ERR_CONFLICT', status: 409 },
  REFERENCED: { code: 'OCT_ERR_REFERENCED', status: 409 },
  BODY_TOO_LARGE: { code: 'OCT_ERR_BODY_TOO_LARGE', status: 413 },
  INTERNAL: { code: 'OCT_ERR_INTERNAL', status: 500 },
  /** The cluster's data dir is out of space (SQLite answered SQLITE_FULL); the write was rolled back whole. */
  INSUFFICIENT_STORAGE: { code: 'OCT_ERR_INSUFFICIENT_STORAGE', status: 507 },
  PLUGIN_FAILED: { code: 'OCT_ERR_PLUGIN_FAILED', status: 500 },
  /** A plugin stopped the request on purpose (Lua `octelium.req.exit(code)`, a direct response …). */
  PLUGIN_EXIT: { code: 'OCT_ERR_PLUGIN_EXIT', status: 403, denial: true },
  INVALID_JSON: { code: 'OCT_ERR_INVALID_JSON', status: 400, rpc: -32700 },
  /** Not a valid origin-form request target: bad percent-encoding, `//`, NUL, a path above the Service root … */
  INVALID_REQUEST_TARGET: { code: 'OCT_ERR_INVALID_REQUEST_TARGET', status: 400 },
  /** The client sent the request too slowly (slowloris): headers or body did not arrive in time. */
  REQUEST_TIMEOUT: { code: 'OCT_ERR_REQUEST_TIMEOUT', status: 408 },
  URI_TOO_LONG: { code: 'OCT_ERR_URI_TOO_LONG', status: 414 },
  HEADERS_TOO_LARGE: { code: 'OCT_ERR_HEADERS_TOO_LARGE', status: 431 },
  /** A per-user or per-address limit (concurrent requests, registrations) was reached; retry later. */
  RATE_LIMITED: { code: 'OCT_ERR_RATE_LIMITED', status: 429 },
  SERVICE_NOT_PUBLIC: { code: 'OCT_ERR_SERVICE_NOT_PUBLIC', status: 403, denial: true },
  UPSTREAM_FAILED: { code: 'OCT_ERR_UPSTREAM_FAILED', status: 502 },
  UPSTREAM_NOT_CONNECTED: { code: 'OCT_ERR_UPSTREAM_NOT_CONNECTED', status: 503 },
  UPSTREAM_TIMEOUT: { code: 'OCT_ERR_UPSTREAM_TIMEOUT', status: 504 },
  UNREACHABLE: { code: 'OCT_ERR_UNREACHABLE', status: 503 },
  /** MCP 2026-07-28: an `Mcp-Method` / `Mcp-Name` / `MCP-Protocol-Version` header disagrees with the body (JSON-RPC -32020). */
  MCP_HEADER_MISMATCH: { code: 'OCT_ERR_MCP_HEADER_MISMATCH', status: 400, rpc: -32020 },
  /** `Mcp-Session-Id` unknown to the gateway, or created by another principal. */
  MCP_SESSION_NOT_FOUND: { code: 'OCT_ERR_MCP_SESSION_NOT_FOUND', status: 404, denial: true },
  /** A browser `Origin` (or a non-cluster `Host`, DNS rebinding) the Service does not allow. */
  ORIGIN_NOT_ALLOWED: { code: 'OCT_ERR_ORIGIN_NOT_ALLOWED', status: 403, denial: true },
  /** The token lacks a scope the Service requires (403 with `error="insufficient_scope"`). */
  INSUFFICIENT_SCOPE: { code: 'OCT_ERR_INSUFFICIENT_SCOPE', status: 403, denial: true },
} as const satisfies Record<string, ErrorKind>;

export type ErrorName = keyof typeof ErrorCodes;
export type ErrorCode = (typeof ErrorCodes)[ErrorName]['code'];

export class OcteliumError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly details?: unknown;
  readonly kind: ErrorName;
  constructor(name: ErrorName, message: string, details?: unknown, httpStatus?: number) {
    super(message);
    this.name = 'OcteliumError';
    this.kind = name;
    this.code = ErrorCodes[name].code;
    this.httpStatus = httpStatus ?? ErrorCodes[name].status;
    this.details = details;
  }

  /** The JSON-RPC error code: the spec's own where one fits, else one in the -32000 "server error" range by status. */
  get rpcCode(): number {
    const kind: ErrorKind = ErrorCodes[this.kind];
    return kind.rpc ?? -32000 - (this.httpStatus % 100) - (this.httpStatus >= 500 ? 50 : 0);
  }

  /** Whether the request was refused on purpose (authn, policy, plugin, origin …) rather than failed. */
  get isDenial(): boolean {
    const kind: ErrorKind = ErrorCodes[this.kind];
    return kind.denial === true;
  }

  /** The body of an error response: JSON-RPC (with the request's id) when the request was JSON-RPC. */
  body(jsonRpcId?: string | number | null): unknown {
    if (jsonRpcId === undefined) return this.toJSON();
    return { jsonrpc: '2.0', id: jsonRpcId, error: { code: this.rpcCode, message: this.message, data: { code: this.code, httpStatus: this.httpStatus } } };
  }
  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) } };
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function isErrorBody(v: unknown): v is ErrorBody {
  return typeof v === 'object' && v !== null && typeof (v as ErrorBody).error?.code === 'string';
}

/** Rebuilds an OcteliumError from a JSON error body (API client side). */
export function errorFromBody(body: ErrorBody, httpStatus: number): OcteliumError {
  const name = (Object.keys(ErrorCodes) as ErrorName[]).find((k) => ErrorCodes[k].code === body.error.code) ?? 'INTERNAL';
  return new OcteliumError(name, body.error.message, body.error.details, httpStatus);
}
