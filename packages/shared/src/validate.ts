import type { z } from 'zod';
import { KINDS, canonicalServiceName, kindNames, lookupKind, nameError } from './kinds.js';
import { Metadata } from './schema/common.js';
import { API_VERSION, type Resource } from './resource.js';

export type PathSegment = string | number;
export interface Issue { path: PathSegment[]; message: string }

export type Validation = { ok: true; resource: Resource } | { ok: false; issues: Issue[] };

/** `spec.rules[0].condition` */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out || '(document)';
}

export function formatIssue(i: Issue): string {
  return `${formatPath(i.path)}: ${i.message}`;
}

/** A zod error as our Issues (path + readable message); shared by resource validation and request schemas. */
export function zodIssues(err: z.ZodError, prefix: PathSegment[] = []): Issue[] {
  const out: Issue[] = [];
  for (const issue of err.issues) {
    const path = [...prefix, ...(issue.path as PathSegment[])];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...path, key], message: 'unknown field' });
    } else if (issue.code === 'invalid_type') {
      const got = issue.input === undefined ? 'nothing' : Array.isArray(issue.input) ? 'array' : issue.input === null ? 'null' : typeof issue.input;
      out.push({ path, message: issue.input === undefined ? `required field (expected ${issue.expected})` : `expected ${issue.expected}, got ${got}` });
    } else if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors)) {
      // Report the branch that got furthest, not zod's generic "invalid input".
      const best = (issue.errors as z.core.$ZodIssue[][]).sort((a, b) => a.length - b.length)[0] ?? [];
      if (best.length) out.push(...zodIssues({ issues: best } as z.ZodError, path));
      else out.push({ path, message: issue.message });
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}

const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status', 'data']);

/**
 * Validates one document as a resource: envelope, kind, name, spec (with defaults) and Secret data.
 * Unknown kinds and unknown fields are rejected with their path. `status` is server-owned and dropped.
 */
export function validateResource(raw: unknown): Validation {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, issues: [{ path: [], message: 'a resource must be a mapping with kind, metadata and spec' }] };
  const doc = raw as Record<string, unknown>;
  const issues: Issue[] = [];
  for (const key of Object.keys(doc)) if (!TOP_LEVEL.has(key)) issues.push({ path: [key], message: 'unknown field' });
  if (doc.apiVersion !== undefined && doc.apiVersion !== API_VERSION) issues.push({ path: ['apiVersion'], message: `must be ${API_VERSION}` });
  if (doc.kind === undefined) return { ok: false, issues: [...issues, { path: ['kind'], message: 'required field (expected one of ' + kindNames() + ')' }] };
  if (typeof doc.kind !== 'string') {
    const got = doc.kind === null ? 'null' : Array.isArray(doc.kind) ? 'array' : typeof doc.kind;
    return { ok: false, issues: [...issues, { path: ['kind'], message: `expected string (one of ${Object.keys(KINDS).join(', ')}), got ${got}` }] };
  }
  const def = lookupKind(doc.kind);
  if (!def || def.kind !== doc.kind) {
    return { ok: false, issues: [...issues, { path: ['kind'], message: `unknown kind "${String(doc.kind)}" (known: ${Object.keys(KINDS).join(', ')})` }] };
  }
  const meta = Metadata.safeParse(doc.metadata, { reportInput: true });
  if (!meta.success) issues.push(...zodIssues(meta.error, ['metadata']));
  let name = meta.success ? meta.data.name : '';
  if (meta.success) {
    const bad = nameError(def.kind, name);
    if (bad) issues.push({ path: ['metadata', 'name'], message: bad });
    if (def.kind === 'Service') name = canonicalServiceName(name);
  }
  const spec = def.spec.safeParse(doc.spec ?? {}, { reportInput: true });
  if (!spec.success) issues.push(...zodIssues(spec.error, ['spec']));
  let data: { value: string } | undefined;
  if (def.data) {
    if (doc.data !== undefined) {
      const d = def.data.safeParse(doc.data, { reportInput: true });
      if (!d.success) issues.push(...zodIssues(d.error, ['data']));
      else data = d.data as { value: string };
    }
  } else if (doc.data !== undefined) issues.push({ path: ['data'], message: `unknown field (only Secrets carry data)` });
  if (issues.length || !meta.success || !spec.success) return { ok: false, issues };
  const resource: Resource = { apiVersion: API_VERSION, kind: def.kind, metadata: { ...meta.data, name }, spec: spec.data };
  if (data) resource.data = data;
  return { ok: true, resource };
}
