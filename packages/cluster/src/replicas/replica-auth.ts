import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The credential replicas present to each other: derived from the cluster secret in the store (never the secret
 * itself, so it can be rotated apart from other uses), so only processes that could read the store can forward.
 */
export function replicaToken(clusterSecret: string): string {
  return createHmac('sha256', clusterSecret).update('octelium replica forwarding v1').digest('base64url');
}

export function replicaTokenMatches(presented: string | undefined, expected: string): boolean {
  const m = /^Replica\s+(\S+)$/.exec(presented ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]), b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
