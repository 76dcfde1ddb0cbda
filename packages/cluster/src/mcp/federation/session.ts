import type { MCPFederationMember } from '@octelium-ts/shared';
import type { Principal } from '../../auth/principal.js';
import { idKey } from '../jsonrpc.js';
import type { MemberClient } from './member-client.js';
import type { SseOut } from './sse-out.js';

/** One member of one federated session: its session (once opened), or why and until when it is left out. */
export interface MemberState {
  cfg: MCPFederationMember;
  /** Canonical Service name (`svc` or `svc.ns`). */
  name: string;
  client?: MemberClient;
  /** The member's initialize result (capabilities). */
  init?: Record<string, unknown>;
  opening?: Promise<MemberClient | undefined>;
  /** Left out until then (down, or refused this caller); retried afterwards. */
  downUntil?: number;
  /** The member's GET stream is being relayed to the downstream GET stream. */
  listening?: boolean;
}

const MAX_MAPPED = 1024;

function boundedSet<K, V>(m: Map<K, V>, k: K, v: V): void {
  if (m.size >= MAX_MAPPED) m.delete(m.keys().next().value!);
  m.set(k, v);
}

/**
 * A downstream MCP session of a federated Service: its own Mcp-Session-Id, what the client said at initialize
 * (sent on to each member when its session opens), and the id maps that tie member messages to downstream ones.
 */
export class FederatedSession {
  readonly members: MemberState[];
  /** Ids the federation uses towards members: its own counter, so no two downstream requests can collide. */
  #nextMemberId = 1;
  #nextServerRequest = 1;
  /** Downstream request id → where it went, for notifications/cancelled. */
  readonly inflight = new Map<string, { member: MemberState; memberId: number; cancel: AbortController }>();
  /** Downstream id of a relayed server→client request → its member and the member's own id. */
  readonly serverRequests = new Map<string, { member: MemberState; memberId: string | number }>();
  /** Resource URI → member, learned from resources/list (resources keep their URIs). */
  readonly uriOwner = new Map<string, MemberState>();
  /** Resource templates seen in resources/templates/list, for URIs no list named. */
  readonly templates: Array<{ re: RegExp; member: MemberState }> = [];
  getStream?: SseOut;
  lastUsed = Date.now();

  constructor(
    readonly id: string,
    readonly service: string,
    readonly owner: string,
    /** The member endpoint path (the path the client used on the federated Service). */
    readonly path: string,
    public principal: Principal | undefined,
    readonly client: { protocolVersion: string; capabilities: unknown; clientInfo: unknown },
    members: Array<{ cfg: MCPFederationMember; name: string }>,
  ) {
    this.members = members.map((m) => ({ ...m }));
  }

  nextMemberId(): number {
    return this.#nextMemberId++;
  }

  /** A downstream id for a member's server→client request (sampling, elicitation, roots). */
  mapServerRequest(member: MemberState, memberId: string | number): string {
    const id = `fed-${this.#nextServerRequest++}`;
    boundedSet(this.serverRequests, idKey(id)!, { member, memberId });
    return id;
  }

  learnUri(uri: string, member: MemberState): void {
    boundedSet(this.uriOwner, uri, member);
  }

  learnTemplate(template: string, member: MemberState): void {
    if (this.templates.length >= MAX_MAPPED) return;
    // RFC 6570 expressions ({x}, {+x}, {/x} …) match any run of characters here: enough to pick a member.
    const re = new RegExp('^' + template.split(/\{[^}]*\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+') + '$', 's');
    if (!this.templates.some((t) => t.re.source === re.source && t.member === member)) this.templates.push({ re, member });
  }

  /** The member that serves a resource URI, when one is known. */
  ownerOfUri(uri: string): MemberState | undefined {
    if (this.members.length === 1) return this.members[0];
    return this.uriOwner.get(uri) ?? this.templates.find((t) => t.re.test(uri))?.member;
  }
}
