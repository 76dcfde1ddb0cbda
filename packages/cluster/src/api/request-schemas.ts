import { z } from 'zod';

/**
 * Schemas for what the control-plane API reads from bodies and queries besides resources (those are validated
 * by the kind registry). A query parameter given twice arrives as an array and is refused: a filter that means
 * one value must not silently pick one.
 */

export const MAX_ACCESS_LOG_LIMIT = 10_000;

const one = z.string();

export const LoginBody = z.object({ authToken: z.string().min(1).max(4096) });

/** `POST /apply`: resources are checked one by one afterwards (each error names its index). */
export const ApplyBody = z.object({
  resources: z.array(z.unknown()),
  dryRun: z.boolean().optional(),
  prune: z.boolean().optional(),
  pruneKinds: z.array(z.string()).optional(),
});

export const ListQuery = z.object({ user: one.optional(), namespace: one.optional() });

export const AccessLogQuery = z.object({
  service: one.optional(),
  user: one.optional(),
  status: one.optional(),
  method: one.optional(),
  follow: z.enum(['true', 'false']).optional(),
  limit: one
    .regex(/^\d+$/, `must be a whole number from 1 to ${MAX_ACCESS_LOG_LIMIT}`)
    .transform(Number)
    .pipe(z.number().int().min(1).max(MAX_ACCESS_LOG_LIMIT))
    .optional(),
});
