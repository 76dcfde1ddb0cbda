import type { ObjectRef } from './resource.js';

/** AccessLog as design.md §6 fixes it: one per gateway request, DENIED ones too. */
export interface AccessLog {
  apiVersion: 'core/v1';
  kind: 'AccessLog';
  metadata: { id: string; createdAt: string; actorRef?: ObjectRef; targetRef?: ObjectRef };
  entry: {
    common: {
      startedAt: string;
      endedAt: string;
      status: 'ALLOWED' | 'DENIED' | 'STATUS_UNSET';
      mode: 'HTTP';
      reason: { type: string; details?: Record<string, unknown> };
      userRef?: ObjectRef;
      serviceRef?: ObjectRef;
      namespaceRef?: ObjectRef;
      sessionRef?: ObjectRef;
      isPublic: boolean;
      isAnonymous: boolean;
      plugins?: Array<{ name: string; type: string; outcome: string; error?: string }>;
      /**
       * Why the request failed, when it did. With `status: ALLOWED` and a 2xx `response.code` it means the response
       * was cut after its status line went out: the upstream or the agent's tunnel ended the body early
       * (`OCT_ERR_UPSTREAM_FAILED`, message "upstream response ended early after N bytes: …").
       */
      error?: { code: string; message: string };
      /**
       * A member request of a federated MCP Service: the federated Service the caller used and the id of that
       * request's own AccessLog (`metadata.id`). `serviceRef` above is the member.
       */
      federation?: { serviceRef: ObjectRef; requestId: string };
    };
    info: {
      http: {
        request: {
          path: string; uri: string; method: string; userAgent?: string; bodyBytes: number;
          /** The JSON body as sent upstream (after plugin rewrites). */
          bodyMap?: unknown;
          /** Only when a plugin rewrote the body: the bodyMap the policies decided on. */
          originalBodyMap?: unknown;
        };
        response: { code: number; bodyBytes: number; contentType?: string; bodyMap?: unknown };
        httpVersion: string;
      };
    };
  };
}

export interface AccessLogFilter { service?: string; user?: string; status?: string; method?: string }

/** Same filter logic on the server (history + live tail) and anywhere else that needs it. */
export function matchesAccessLog(log: AccessLog, f: AccessLogFilter): boolean {
  if (f.service && log.entry.common.serviceRef?.name !== f.service) return false;
  if (f.user && log.entry.common.userRef?.name !== f.user) return false;
  if (f.status && log.entry.common.status !== f.status.toUpperCase()) return false;
  if (f.method) {
    const body = log.entry.info.http.request.bodyMap as { method?: unknown } | undefined;
    if (body?.method !== f.method && log.entry.info.http.request.method !== f.method) return false;
  }
  return true;
}
