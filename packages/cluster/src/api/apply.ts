import { KINDS, OcteliumError, type ApplyRequest, type ApplyResponse, type ApplyResult, type KindName, type Resource } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';
import type { IdentityService } from '../auth/identity.js';
import { deleteResource } from './delete.js';

/** Dependency order: referenced kinds first, so in-batch references resolve; deletes run in reverse. */
export const APPLY_ORDER: KindName[] = ['Namespace', 'Group', 'Policy', 'Secret', 'User', 'Service', 'Credential'];

class DryRunRollback extends Error {}

/**
 * All-or-nothing apply: every resource (already admitted) is created or updated in one SQLite
 * transaction; with `prune`, resources of the pruned kinds that are absent are deleted in the same
 * transaction. A dry run performs everything, then rolls back.
 */
export function applyResources(store: ResourceStore, identity: IdentityService, req: ApplyRequest & { resources: Resource[] }): ApplyResponse {
  const seen = new Set<string>();
  for (const r of req.resources) {
    const key = `${r.kind}/${r.metadata.name}`;
    if (seen.has(key)) throw new OcteliumError('INVALID_ARGUMENT', `${r.kind.toLowerCase()}/${r.metadata.name} appears twice`);
    if (KINDS[r.kind].readOnly) throw new OcteliumError('INVALID_ARGUMENT', `${r.kind} resources are created by the cluster and cannot be applied`);
    seen.add(key);
  }
  const sorted = [...req.resources].sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind));
  let out: ApplyResponse = { results: [], warnings: [] };
  try {
    store.transaction(() => {
      const results: ApplyResult[] = [];
      for (const r of sorted) {
        const existing = store.get(r.kind, r.metadata.name);
        if (existing?.metadata.isSystem && !store.isUnchanged(r)) throw new OcteliumError('INVALID_ARGUMENT', `${r.kind.toLowerCase()}/${r.metadata.name} is a system resource and cannot be changed`);
        if (!existing) {
          if (KINDS[r.kind].issuesToken && !req.dryRun) identity.createCredential(r);
          else store.create(r);
          results.push({ kind: r.kind, name: r.metadata.name, action: 'created' });
        } else {
          const { changed } = store.update(r);
          results.push({ kind: r.kind, name: r.metadata.name, action: changed ? 'configured' : 'unchanged' });
        }
      }
      if (req.prune) {
        const kinds = (req.pruneKinds ?? []).map((k) => k as KindName).filter((k) => APPLY_ORDER.includes(k));
        for (const kind of [...APPLY_ORDER].reverse()) {
          if (!kinds.includes(kind)) continue;
          for (const r of store.list(kind)) {
            if (r.metadata.isSystem || seen.has(`${kind}/${r.metadata.name}`)) continue;
            deleteResource(store, kind, r.metadata.name);
            results.push({ kind, name: r.metadata.name, action: 'deleted' });
          }
        }
      }
      const warnings: string[] = [];
      for (const r of sorted) {
        for (const ref of store.missingRefs(r)) {
          warnings.push(`${r.kind.toLowerCase()}/${r.metadata.name}: ${ref.path} refers to ${ref.kind.toLowerCase()} "${ref.name}", which does not exist yet; it takes effect once it is created`);
        }
        if (KINDS[r.kind].issuesToken && results.find((x) => x.name === r.metadata.name && x.kind === r.kind)?.action === 'created') {
          warnings.push(`${r.kind.toLowerCase()}/${r.metadata.name}: created from YAML, so its token is not shown; use \`octeliumctl create cred\` to get one`);
        }
      }
      out = { results, warnings };
      if (req.dryRun) throw new DryRunRollback();
    });
  } catch (err) {
    if (!(err instanceof DryRunRollback)) throw err;
  }
  return out;
}
