import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError, canonicalServiceName, splitServiceName } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { RequestFacts } from '../gateway/request-facts.js';
import { readJSON, sendJSON } from '../api/http-util.js';
import type { PolicyEngine } from './engine.js';

export interface PolicyTestRequest {
  service: string;
  user: string;
  request?: { method?: string; path?: string; headers?: Record<string, string>; query?: Record<string, string>; body?: unknown };
}

/**
 * `POST /api/v1/policy/test` (behind `octeliumctl policy test`): evaluates a Service's effective policies
 * for a User and a hypothetical request, and returns the decision with every rule's result
 * (`outcome` MATCHED | NOT_MATCHED | ERROR, with `error` or the `missing` keys that made it false) and the
 * request as it was evaluated.
 */
export function policyTestRoute(store: ResourceStore, engine: PolicyEngine) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = (await readJSON(req)) as PolicyTestRequest | undefined;
    if (!body?.service || !body.user) throw new OcteliumError('INVALID_ARGUMENT', 'service and user are required');
    const service = store.mustGet('Service', canonicalServiceName(body.service));
    const user = store.mustGet('User', body.user);
    const r = body.request ?? {};
    const path = r.path ?? '/';
    const query = r.query ?? {};
    const qs = new URLSearchParams(query).toString();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
    const facts: RequestFacts = {
      user, service,
      namespace: store.get('Namespace', splitServiceName(service.metadata.name).namespace),
      request: {
        http: {
          method: (r.method ?? 'POST').toUpperCase(), path, uri: qs ? `${path}?${qs}` : path, scheme: 'http',
          host: headers.host ?? '', headers, query,
          ...(r.body !== undefined ? { bodyMap: r.body, body: JSON.stringify(r.body) } : {}),
        },
      },
    };
    const http = facts.request!.http!;
    sendJSON(res, 200, { ...engine.explain(facts), request: { method: http.method, uri: http.uri, ...(r.body !== undefined ? { bodyMap: r.body } : {}) } });
  };
}
