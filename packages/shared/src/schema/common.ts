import { z } from 'zod';

/** DNS-label-like names; Services may carry a `.namespace` suffix. */
export const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const Name = z.string().regex(NAME_RE, 'must be lower-case letters, digits and "-", starting and ending alphanumeric');

export const Metadata = z.strictObject({
  name: z.string().min(1),
  // Server-set fields are accepted so that `get -o yaml` output can be re-applied unchanged.
  uid: z.string().optional(),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
  resourceVersion: z.string().optional(),
  displayName: z.string().optional(),
  description: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  tags: z.array(z.string()).optional(),
  picURL: z.string().optional(),
  isSystem: z.boolean().optional(),
});
export type Metadata = z.infer<typeof Metadata>;

export const SecretRef = z.strictObject({ fromSecret: Name });
export type SecretRef = z.infer<typeof SecretRef>;

/** Octelium's Condition: exactly one of match / all / any / none / not, nested freely. */
export interface Condition {
  match?: string;
  all?: { of: Condition[] };
  any?: { of: Condition[] };
  none?: { of: Condition[] };
  not?: string | Condition;
  matchAny?: boolean;
}
const ConditionList: z.ZodType<{ of: Condition[] }> = z.lazy(() => z.strictObject({ of: z.array(Condition).min(1) }));
export const Condition: z.ZodType<Condition> = z.lazy(() =>
  z
    .strictObject({
      match: z.string().min(1).optional(),
      all: ConditionList.optional(),
      any: ConditionList.optional(),
      none: ConditionList.optional(),
      not: z.union([z.string().min(1), Condition]).optional(),
      matchAny: z.boolean().optional(),
    })
    .refine((c) => Object.keys(c).filter((k) => (c as Record<string, unknown>)[k] !== undefined).length === 1, {
      message: 'a condition needs exactly one of match, all, any, none, not, matchAny',
    }),
);

export const Rule = z.strictObject({
  name: z.string().optional(),
  effect: z.enum(['ALLOW', 'DENY']),
  priority: z.number().int().optional(),
  condition: Condition,
});
export type Rule = z.infer<typeof Rule>;

export const PolicySpec = z.strictObject({
  rules: z.array(Rule).default([]),
});
export type PolicySpec = z.infer<typeof PolicySpec>;

export const Authorization = z.strictObject({
  policies: z.array(Name).optional(),
  inlinePolicies: z
    .array(z.strictObject({ name: z.string().optional(), spec: PolicySpec }))
    .optional(),
});
export type Authorization = z.infer<typeof Authorization>;

/** Octelium's Duration message, e.g. `{seconds: 30}`. */
export const Duration = z.strictObject({
  milliseconds: z.number().int().nonnegative().optional(),
  seconds: z.number().int().nonnegative().optional(),
  minutes: z.number().int().nonnegative().optional(),
  hours: z.number().int().nonnegative().optional(),
});

export const KeyValue = z.strictObject({ key: z.string().min(1), value: z.string(), append: z.boolean().optional() });
