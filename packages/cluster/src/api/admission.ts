import { OcteliumError, formatIssue, validateResource, type Issue, type Resource } from '@octelium-ts/shared';

/** Extra checks beyond the schema (CEL compiles, Lua parses …), registered by the subsystems that own them. */
export type AdmissionCheck = (r: Resource) => Issue[] | Promise<Issue[]>;

/** Schema validation plus every admission check; throws INVALID_ARGUMENT listing each problem with its path. */
export async function admit(raw: unknown, checks: AdmissionCheck[], label?: string): Promise<Resource> {
  const v = validateResource(raw);
  const who = label ?? resourceLabel(raw);
  if (!v.ok) throw new OcteliumError('INVALID_ARGUMENT', `${who}: ${v.issues.map(formatIssue).join('; ')}`, { issues: v.issues });
  const issues: Issue[] = [];
  for (const check of checks) issues.push(...(await check(v.resource)));
  if (issues.length) throw new OcteliumError('INVALID_ARGUMENT', `${who}: ${issues.map(formatIssue).join('; ')}`, { issues });
  return v.resource;
}

/** `kind/name` of raw input for messages; a kind or name that is not a string (hostile input) shows as `?`. */
export function resourceLabel(raw: unknown): string {
  const r = raw && typeof raw === 'object' ? (raw as { kind?: unknown; metadata?: { name?: unknown } }) : undefined;
  const kind = typeof r?.kind === 'string' ? r.kind.toLowerCase() : 'resource';
  const name = r?.metadata && typeof r.metadata === 'object' && typeof r.metadata.name === 'string' ? r.metadata.name : '?';
  return `${kind}/${name}`;
}
