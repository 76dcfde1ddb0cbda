import type { z } from 'zod';
import { OcteliumError, formatIssue, zodIssues } from '@octelium-ts/shared';

/**
 * Checks request input (a JSON body, query parameters) against its schema before anything uses it. Input
 * that does not fit is the client's mistake: a 400 OCT_ERR_INVALID_ARGUMENT naming each problem by its path.
 */
export function parseInput<T extends z.ZodType>(schema: T, raw: unknown, what: string): z.output<T> {
  const r = schema.safeParse(raw, { reportInput: true });
  if (r.success) return r.data;
  const issues = zodIssues(r.error);
  throw new OcteliumError('INVALID_ARGUMENT', `${what}: ${issues.slice(0, 5).map(formatIssue).join('; ')}`, { issues });
}

/** Query or form parameters as a record; a key given more than once maps to all its values (schemas refuse those). */
export function paramsOf(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    out[key] = all.length === 1 ? all[0] : all;
  }
  return out;
}
