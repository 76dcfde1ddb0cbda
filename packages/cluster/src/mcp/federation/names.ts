import type { MCPFederationMember } from '@octelium-ts/shared';

/**
 * Name handling of a federated MCP Service: which member a prefixed name belongs to, the Service's
 * include/exclude globs, and the cursor that pages across members.
 */

/** `*` is any run of characters, `?` one character; everything else is literal (tool names contain dots). */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${re}$`, 's');
}

export class ToolFilter {
  readonly #include?: RegExp[];
  readonly #exclude: RegExp[];

  constructor(spec?: { include?: string[]; exclude?: string[] }) {
    this.#include = spec?.include?.map(globToRegExp);
    this.#exclude = (spec?.exclude ?? []).map(globToRegExp);
  }

  /** Whether the federated Service offers a tool by this (prefixed) name. */
  offers(name: string): boolean {
    if (this.#include && !this.#include.some((r) => r.test(name))) return false;
    return !this.#exclude.some((r) => r.test(name));
  }
}

export interface RoutedName { member: MCPFederationMember; name: string }

/**
 * The member a prefixed tool/prompt name belongs to, and the member's own name for it. The longest matching
 * prefix wins, so `a_` and `a_b_` can coexist; an empty prefix takes whatever no other prefix claims.
 */
export function routeName(members: MCPFederationMember[], prefixed: string): RoutedName | undefined {
  let best: MCPFederationMember | undefined;
  for (const m of members) {
    if (!prefixed.startsWith(m.prefix) || prefixed.length === m.prefix.length) continue;
    if (!best || m.prefix.length > best.prefix.length) best = m;
  }
  return best && { member: best, name: prefixed.slice(best.prefix.length) };
}

/** Whether a member's own name, once prefixed, would route back to that member (else another prefix shadows it). */
export function routesBack(members: MCPFederationMember[], member: MCPFederationMember, name: string): boolean {
  return routeName(members, member.prefix + name)?.member === member;
}

/** Position in a federated list: member index and that member's own cursor (none = its first page). */
export interface FederatedCursor { m: number; c?: string }

const MAX_CURSOR = 4096;

export function encodeCursor(c: FederatedCursor): string {
  return Buffer.from(JSON.stringify(c.c === undefined ? { m: c.m } : c)).toString('base64url');
}

/** A cursor the client sent back; undefined when it is not one of ours (answered with -32602). */
export function decodeCursor(raw: unknown, memberCount: number): FederatedCursor | undefined {
  if (typeof raw !== 'string' || raw.length > MAX_CURSOR) return undefined;
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null) return undefined;
    const { m, c } = v as { m?: unknown; c?: unknown };
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m >= memberCount) return undefined;
    if (c !== undefined && typeof c !== 'string') return undefined;
    return { m, c };
  } catch {
    return undefined;
  }
}
