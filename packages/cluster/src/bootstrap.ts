import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resource } from '@octelium-ts/shared';
import type { ResourceStore } from './store/resource-store.js';
import { ADMIN_GROUP, type IdentityService } from './auth/identity.js';

const sys = (kind: Resource['kind'], name: string, spec: unknown): Resource => ({
  apiVersion: 'core/v1', kind, metadata: { name, isSystem: true }, spec,
});

/**
 * First start only (no `root` User yet): the default Namespace, the admin Group, built-in Policies,
 * and the WORKLOAD user `root` with an auth-token Credential. The token is written to
 * DATA_DIR/bootstrap-token (0600) and returned so the caller can print it once.
 */
export function bootstrap(store: ResourceStore, identity: IdentityService, dataDir: string | ':memory:', builtins: Resource[]): string | undefined {
  if (store.get('User', 'root')) return undefined;
  // Checked again inside the transaction, which holds the store's write lock and sees every replica's commits:
  // replicas starting together on one store bootstrap exactly once between them.
  const token = store.transaction(() => {
    if (store.get('User', 'root')) return undefined;
    for (const r of [sys('Namespace', 'default', {}), sys('Group', ADMIN_GROUP, {}), ...builtins]) {
      if (!store.get(r.kind, r.metadata.name)) store.create(r);
    }
    store.create(sys('User', 'root', { type: 'WORKLOAD', groups: [ADMIN_GROUP] }));
    const { token } = identity.createCredential(sys('Credential', 'root-bootstrap', { type: 'AUTH_TOKEN', user: 'root' }));
    return token.authenticationToken!;
  });
  if (token === undefined) return undefined;
  if (dataDir !== ':memory:') writeFileSync(join(dataDir, 'bootstrap-token'), token + '\n', { mode: 0o600 });
  return token;
}
