import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  API_PREFIX, KINDS, OcteliumError, lookupKind, matchesAccessLog, type AccessLogFilter, type KindDef, type Resource,
} from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { IdentityService } from '../auth/identity.js';
import type { Principal } from '../auth/principal.js';
import { controlPlaneRefusal } from '../auth/token-boundary.js';
import type { AccessLogStore } from '../accesslog/store.js';
import { admit, type AdmissionCheck } from './admission.js';
import { applyResources } from './apply.js';
import { deleteResource } from './delete.js';
import { bearerToken, readJSON, readJSONObject, sendError, sendJSON } from './http-util.js';
import { paramsOf, parseInput } from './parse-input.js';
import { AccessLogQuery, ApplyBody, ListQuery, LoginBody } from './request-schemas.js';
import { decodeComponent } from './uri-component.js';
import { resourceLabel } from './admission.js';

export interface ApiDeps {
  store: ResourceStore;
  identity: IdentityService;
  accessLogs: AccessLogStore;
  checks: AdmissionCheck[];
  /** Extra admin routes owned by other subsystems (e.g. `policy/test`); path without the /api/v1 prefix. */
  extraRoutes?: Record<string, (req: IncomingMessage, res: ServerResponse, principal: Principal) => Promise<void>>;
}

/** What the API returns for a resource: Secret values never leave the cluster. */
export function publicView(r: Resource): Resource {
  if (r.kind !== 'Secret' || !r.data) return r;
  const { data: _hidden, ...rest } = r;
  return rest as Resource;
}

const UNAUTH_HINT = 'run `octelium login --domain <DOMAIN> --auth-token <TOKEN>`';

/** The control-plane API under /api/v1 (JSON). Routes for every kind come from the kind registry. */
export function createApiHandler(deps: ApiDeps) {
  const { store, identity } = deps;

  async function principalOf(req: IncomingMessage): Promise<Principal> {
    const token = bearerToken(req);
    if (!token) throw new OcteliumError('UNAUTHENTICATED', `no credential presented; ${UNAUTH_HINT}`);
    const p = await identity.authenticate(token);
    if (!p) throw new OcteliumError('UNAUTHENTICATED', `invalid or expired token; ${UNAUTH_HINT}`);
    const refused = controlPlaneRefusal(p);
    if (refused) throw new OcteliumError('UNAUTHENTICATED', `${refused}; ${UNAUTH_HINT}`);
    return p;
  }

  function requireAdmin(p: Principal): void {
    if (!identity.isAdmin(p.user)) throw new OcteliumError('PERMISSION_DENIED', `user "${p.user.metadata.name}" is not an admin (member of group octelium-admins)`);
  }

  /** What a read returns: the public view plus `status.pendingRefs`, the references that do not resolve yet. */
  function readView(r: Resource): Resource {
    const view = publicView(r);
    const pending = store.missingRefs(r).map((ref) => `${ref.kind.toLowerCase()}/${ref.name}`);
    return pending.length ? { ...view, status: { ...view.status, pendingRefs: pending } } : view;
  }

  async function kindRoute(def: KindDef, name: string | undefined, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'GET' && !name) {
      let items = store.list(def.kind);
      // Filters a kind does not declare are ignored, as before: `?user=` means nothing for a Service.
      for (const [param, value] of Object.entries(parseInput(ListQuery, paramsOf(url.searchParams), 'query'))) {
        const matches = value ? def.listFilters[param] : undefined;
        if (matches) items = items.filter((r) => matches(r, value!));
      }
      items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      return sendJSON(res, 200, { items: items.map(readView) });
    }
    if (method === 'GET' && name) return sendJSON(res, 200, readView(store.mustGet(def.kind, name)));
    if (method === 'DELETE' && name) return sendJSON(res, 200, publicView(deleteResource(store, def.kind, name)));
    if (def.readOnly) throw new OcteliumError('INVALID_ARGUMENT', `${def.kind} resources are created by the cluster, not through the API`);
    if (method === 'POST' && !name) {
      const r = await admit({ ...(await readJSONObject(req)), kind: def.kind }, deps.checks);
      if (def.issuesToken) return sendJSON(res, 201, identity.createCredential(r));
      return sendJSON(res, 201, publicView(store.create(r)));
    }
    if (method === 'PUT' && name) {
      const r = await admit({ ...(await readJSONObject(req)), kind: def.kind }, deps.checks);
      if (r.metadata.name !== name) throw new OcteliumError('INVALID_ARGUMENT', `metadata.name "${r.metadata.name}" does not match the URL`);
      if (store.get(def.kind, name)?.metadata.isSystem) throw new OcteliumError('INVALID_ARGUMENT', `${def.kind.toLowerCase()}/${name} is a system resource and cannot be changed`);
      return sendJSON(res, 200, publicView(store.update(r).resource));
    }
    throw new OcteliumError('NOT_FOUND', `no route ${method} ${url.pathname}`);
  }

  async function streamAccessLogs(req: IncomingMessage, res: ServerResponse, filter: AccessLogFilter): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': following access logs\n\n');
    const stop = deps.accessLogs.subscribe((log) => {
      if (matchesAccessLog(log, filter)) res.write(`data: ${JSON.stringify(log)}\n\n`);
    });
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    await new Promise<void>((resolve) => res.on('close', resolve));
    clearInterval(keepAlive);
    stop();
  }

  return async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const path = url.pathname.slice(API_PREFIX.length).replace(/\/+$/, '') || '/';
      if (path === '/login' && req.method === 'POST') {
        const body = parseInput(LoginBody, await readJSON(req), 'login request (expected {"authToken": "…"})');
        const out = identity.login(body.authToken);
        return sendJSON(res, 200, out);
      }
      const principal = await principalOf(req);
      if (path === '/whoami') return sendJSON(res, 200, { user: principal.user, session: principal.session, isAdmin: identity.isAdmin(principal.user) });
      if (path === '/logout' && req.method === 'POST') {
        if (principal.session && principal.via === 'session') store.delete('Session', principal.session.metadata.name);
        return sendJSON(res, 200, { ok: true });
      }
      requireAdmin(principal);
      const extra = deps.extraRoutes?.[path];
      if (extra) return await extra(req, res, principal);
      if (path === '/apply' && req.method === 'POST') {
        const body = parseInput(ApplyBody, await readJSON(req), 'apply request (expected {"resources": [...]})');
        const resources: Resource[] = [];
        const errors: string[] = [];
        for (const [i, raw] of body.resources.entries()) {
          try {
            resources.push(await admit(raw, deps.checks, `resources[${i}] ${resourceLabel(raw)}`));
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        if (errors.length) throw new OcteliumError('INVALID_ARGUMENT', errors.join('\n'), { errors });
        return sendJSON(res, 200, applyResources(store, identity, { ...body, resources }));
      }
      if (path === '/accesslogs' && req.method === 'GET') {
        const { follow, limit, ...filter } = parseInput(AccessLogQuery, paramsOf(url.searchParams), 'query');
        if (follow === 'true') return await streamAccessLogs(req, res, filter);
        return sendJSON(res, 200, { items: deps.accessLogs.query(filter, limit ?? 100) });
      }
      const [, plural, name, ...rest] = path.split('/');
      const def = plural ? lookupKind(plural) : undefined;
      if (!def || def.plural !== plural || rest.length) throw new OcteliumError('NOT_FOUND', `no route ${req.method} ${url.pathname}; kinds: ${Object.values(KINDS).map((k) => k.plural).join(', ')}`);
      const decoded = name ? decodeComponent(name, 'the resource name in the URL') : undefined;
      await kindRoute(def, decoded && def.canonicalName(decoded), req, res, url);
    } catch (err) {
      // RFC 6750 §3.1: a presented token that is refused gets `invalid_token`; no token, a bare challenge.
      const challenge = bearerToken(req) ? 'Bearer error="invalid_token"' : 'Bearer';
      sendError(res, err, err instanceof OcteliumError && err.httpStatus === 401 ? { 'www-authenticate': challenge } : {});
    }
  };
}
