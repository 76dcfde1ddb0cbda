import { randomBytes } from 'node:crypto';
import type { LoginSecrets, VerifiedIdentity } from '../idp/types.js';

/** A login between `/login/<idp>` and `/callback`. Server-side, single use. */
export interface PendingLogin {
  state: string;
  idp: string;
  secrets: LoginSecrets;
  /** Validated target after login (safe-redirect.ts). */
  redirect?: string;
  /** `octelium login` without a token: the loopback port its callback listens on, and its nonce. */
  cli?: { port: number; nonce: string };
  source: string;
  createdAt: number;
  /** SAML HTTP-POST: the identity verified at the IdP's POST, waiting for the browser's GET with the login cookie. */
  verified?: VerifiedIdentity;
}

export const PENDING_LOGIN_TTL_MS = 10 * 60_000;

/**
 * Logins in progress, bounded like the consent requests of the authorization server: per source address (its
 * oldest is dropped) and in total (new ones are refused, none evicted), so a flood of `/login/<idp>` from one
 * address cannot push out anybody else's login.
 */
export class PendingLogins {
  readonly #byState = new Map<string, PendingLogin>();

  constructor(private readonly perSource = 50, private readonly max = 10_000) {}

  add(p: Omit<PendingLogin, 'state' | 'createdAt'>): PendingLogin | undefined {
    this.#sweep();
    const mine = [...this.#byState.values()].filter((x) => x.source === p.source);
    if (mine.length >= this.perSource) this.#byState.delete(mine[0].state);
    if (this.#byState.size >= this.max) return undefined;
    const entry: PendingLogin = { ...p, state: randomBytes(32).toString('base64url'), createdAt: Date.now() };
    this.#byState.set(entry.state, entry);
    return entry;
  }

  /** Removes and returns the login for `state` (single use: a replayed state finds nothing). */
  take(state: string): PendingLogin | undefined {
    const p = this.#byState.get(state);
    if (!p) return undefined;
    this.#byState.delete(state);
    return Date.now() - p.createdAt <= PENDING_LOGIN_TTL_MS ? p : undefined;
  }

  /** The login for `state`, left in place (SAML's POST step); undefined when unknown or expired. */
  peek(state: string): PendingLogin | undefined {
    const p = this.#byState.get(state);
    return p && Date.now() - p.createdAt <= PENDING_LOGIN_TTL_MS ? p : undefined;
  }

  get size(): number {
    return this.#byState.size;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, p] of this.#byState) {
      if (now - p.createdAt <= PENDING_LOGIN_TTL_MS) break; // insertion order = age order
      this.#byState.delete(k);
    }
  }
}
