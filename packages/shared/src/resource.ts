import type { Metadata } from './schema/common.js';
import type { KindName } from './kinds.js';

export const API_VERSION = 'core/v1';

export interface ObjectRef { apiVersion?: string; kind: string; name: string; uid?: string }

export interface Resource<Spec = unknown> {
  apiVersion: typeof API_VERSION;
  kind: KindName;
  metadata: Metadata;
  spec: Spec;
  status?: Record<string, unknown>;
  /** Secret only; write-only, never returned by the API. */
  data?: { value: string };
}

export function refOf(r: Resource): ObjectRef {
  return { apiVersion: API_VERSION, kind: r.kind, name: r.metadata.name, uid: r.metadata.uid };
}
