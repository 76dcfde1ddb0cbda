import { KINDS, OcteliumError, type KindName, type Resource } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';

/**
 * Deletes unless something still refers to the resource (a Service's upstream.user, a fromSecret, an
 * attached Policy …): breaking a reference is refused with the list of referrers. A User's own
 * Credentials and Sessions do not block it; they are removed with it.
 */
export function deleteResource(store: ResourceStore, kind: KindName, name: string): Resource {
  const target = store.mustGet(kind, name);
  if (target.metadata.isSystem) throw new OcteliumError('INVALID_ARGUMENT', `${kind.toLowerCase()}/${name} is a system resource and cannot be deleted`);
  const blocking = store.referrers(kind, name).filter(({ resource }) => KINDS[resource.kind].ownedBy !== kind);
  if (blocking.length) {
    const list = blocking.map(({ resource, ref }) => `${resource.kind.toLowerCase()}/${resource.metadata.name} (${ref.path})`).join(', ');
    throw new OcteliumError('REFERENCED', `cannot delete ${kind.toLowerCase()}/${name}: still referenced by ${list}`, { referrers: blocking.map((b) => ({ kind: b.resource.kind, name: b.resource.metadata.name, path: b.ref.path })) });
  }
  return store.delete(kind, name);
}
