import {
  NAME_RE, canonicalServiceName, normalizeUpstreamURL,
  type AcceptedService, type RejectedService, type Resource, type ServiceSpec,
} from '@octelium-ts/shared';

type UpstreamLike = { url?: string; user?: string; loadbalance?: { endpoints: Array<{ url: string; user?: string }> } } | undefined;

function collect(u: UpstreamLike, user: string, out: Set<string>): void {
  if (!u) return;
  if (u.user === user && u.url) out.add(normalizeUpstreamURL(u.url));
  for (const ep of u.loadbalance?.endpoints ?? []) if (ep.user === user) out.add(normalizeUpstreamURL(ep.url));
}

/**
 * The upstream URLs of a Service that `user`'s agents serve: `spec.config.upstream` and every dynamicConfig
 * config (and load-balanced endpoint) whose `user` is this User. Empty = this User serves nothing of it.
 */
export function upstreamsServedBy(svc: Resource, user: string): string[] {
  const spec = svc.spec as ServiceSpec;
  const out = new Set<string>();
  collect(spec.config?.upstream, user, out);
  for (const c of spec.dynamicConfig?.configs ?? []) collect(c.upstream, user, out);
  return [...out].sort();
}

/** Users a Service is assigned to through upstream.user, for the rejection message. */
function assignedUsers(svc: Resource): string[] {
  const spec = svc.spec as ServiceSpec;
  const users = new Set<string>();
  const add = (u: UpstreamLike) => {
    if (u?.user) users.add(u.user);
    for (const ep of u?.loadbalance?.endpoints ?? []) if (ep.user) users.add(ep.user);
  };
  add(spec.config?.upstream);
  for (const c of spec.dynamicConfig?.configs ?? []) add(c.upstream);
  return [...users];
}

/** Whether a requested name can be a Service name at all (`svc` or `svc.ns`). */
export function isServiceName(name: string): boolean {
  const parts = name.split('.');
  return parts.length <= 2 && parts.every((p) => NAME_RE.test(p));
}

export interface ServeDecision { accepted: AcceptedService[]; rejected: RejectedService[] }

export interface ServiceLookup {
  getService(name: string): Resource | undefined;
  listServices?(): Resource[];
}

/** Decides one Service for one User: accepted with its upstream URLs, or rejected with a reason. */
export function decideService(lookup: ServiceLookup, user: string, requested: string): AcceptedService | RejectedService {
  if (!isServiceName(requested)) return { name: requested, reason: 'not a valid Service name' };
  const name = canonicalServiceName(requested);
  let svc: Resource | undefined;
  try {
    svc = lookup.getService(name);
  } catch {
    svc = undefined;
  }
  if (!svc) return { name, reason: `Service "${name}" does not exist` };
  const upstreams = upstreamsServedBy(svc, user);
  if (upstreams.length) return { name, upstreams };
  const owners = assignedUsers(svc);
  if (owners.includes(user)) return { name, reason: `Service "${name}" has no upstream.url for user "${user}" to dial` };
  if (owners.length) return { name, reason: `Service "${name}" is assigned to user "${owners.join('", "')}", not "${user}"` };
  return { name, reason: `Service "${name}" is not served through octelium connect (no spec.config.upstream.user)` };
}

/** The handshake decision: the explicitly requested Services, plus (serveAll) every Service assigned to the User. */
export function decideServe(lookup: ServiceLookup, user: string, requested: string[], serveAll: boolean): ServeDecision {
  const accepted = new Map<string, AcceptedService>();
  const rejected: RejectedService[] = [];
  for (const r of requested) {
    const d = decideService(lookup, user, r);
    if ('upstreams' in d) accepted.set(d.name, d);
    else rejected.push(d);
  }
  if (serveAll) {
    let all: Resource[] = [];
    try {
      all = lookup.listServices?.() ?? [];
    } catch {
      all = [];
    }
    for (const svc of all) {
      const upstreams = upstreamsServedBy(svc, user);
      if (upstreams.length) accepted.set(svc.metadata.name, { name: svc.metadata.name, upstreams });
    }
  }
  return { accepted: [...accepted.values()], rejected };
}
