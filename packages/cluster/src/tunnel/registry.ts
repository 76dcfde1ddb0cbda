import { canonicalServiceName, type AbortSignalLike } from '@octelium-ts/shared';
import type { AgentConnection } from './agent-conn.js';

/**
 * The connected agents of one hub: who is connected, who serves what, and how to wait for one. The registry holds
 * no sockets of its own; the handshake adds a connection once it exists and removes it when its tunnel closes.
 */
export class AgentRegistry {
  readonly #agents = new Map<string, AgentConnection>();
  readonly #waiters = new Set<() => void>();
  /** Open tunnel sockets per User, counted from the upgrade until the socket closes. */
  readonly #connections = new Map<string, number>();
  #rr = 0;

  add(conn: AgentConnection): void {
    this.#agents.set(conn.id, conn);
  }

  remove(conn: AgentConnection): void {
    this.#agents.delete(conn.id);
  }

  all(): AgentConnection[] {
    return [...this.#agents.values()];
  }

  clear(): void {
    this.#agents.clear();
  }

  /** Counts a new tunnel socket of `user` unless it already holds `cap`; the returned function uncounts it. */
  admit(user: string, cap: number): { open: number; release?: () => void } {
    const open = this.#connections.get(user) ?? 0;
    if (open >= cap) return { open };
    this.#connections.set(user, open + 1);
    return {
      open,
      release: () => {
        const n = (this.#connections.get(user) ?? 1) - 1;
        if (n > 0) this.#connections.set(user, n);
        else this.#connections.delete(user);
      },
    };
  }

  isServing(userName: string, service: string): boolean {
    const name = canonicalServiceName(service);
    for (const c of this.#agents.values()) if (c.alive && c.user === userName && c.accepted.has(name)) return true;
    return false;
  }

  /**
   * The least busy ready agent of the user serving `service` (round-robin among equals); 'full' when there are
   * such agents but none has room in its buffer budget for another stream.
   */
  pick(userName: string, service: string): AgentConnection | 'full' | undefined {
    const serving: AgentConnection[] = [];
    for (const c of this.#agents.values()) {
      if (!c.alive || c.user !== userName) continue;
      if (c.accepted.has(service) || c.serveAll || c.wants.has(service)) serving.push(c);
    }
    if (!serving.length) return undefined;
    const candidates = serving.filter((c) => c.mux.canOpenStream());
    if (!candidates.length) return 'full';
    const min = Math.min(...candidates.map((c) => c.mux.activeStreams));
    const least = candidates.filter((c) => c.mux.activeStreams === min);
    return least[this.#rr++ % least.length];
  }

  /** Wakes everything waiting for an agent (one connected, or the hub is closing). */
  notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves when an agent completes its handshake, after `ms`, or when `signal` aborts — whichever is first. */
  waitForAgent(ms: number, signal?: AbortSignalLike): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
