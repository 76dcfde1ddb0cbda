import { FrameType, type AcceptedService, type TunnelMux } from '@octelium-ts/shared';
import type { Principal } from '../auth/principal.js';

/** One connected `octelium connect` agent, as the hub sees it. */
export class AgentConnection {
  readonly id: string;
  readonly user: string;
  readonly principal: Principal;
  /** The Session token from the upgrade; published streams are replayed with it. */
  readonly token: string;
  readonly mux: TunnelMux;
  readonly connectedAt = new Date();
  /** Set once the handshake completed; only then does the hub route to it. */
  ready = false;
  version = 0;
  /** What the agent asked for; a Service created or reassigned later is accepted on first use. */
  wants = new Set<string>();
  serveAll = false;
  publish: string[] = [];
  /** Accepted Services → the upstream URLs the agent may dial (exactly what it was told). */
  readonly accepted = new Map<string, string[]>();
  servedStreams = 0;
  publishedStreams = 0;

  constructor(id: string, principal: Principal, token: string, mux: TunnelMux) {
    this.id = id;
    this.principal = principal;
    this.user = principal.user.metadata.name;
    this.token = token;
    this.mux = mux;
  }

  get alive(): boolean {
    return this.ready && !this.mux.closed;
  }

  acceptedList(): AcceptedService[] {
    return [...this.accepted].map(([name, upstreams]) => ({ name, upstreams }));
  }

  /**
   * Records the current upstreams of a Service; when they changed, tells the agent (SERVICES) before anything else
   * is sent, so the agent's URL check and the hub's view never disagree. Empty `upstreams` withdraws it.
   */
  sync(name: string, upstreams: string[]): void {
    const prev = this.accepted.get(name);
    if (upstreams.length === 0) {
      if (!prev) return;
      this.accepted.delete(name);
    } else {
      if (prev && prev.length === upstreams.length && prev.every((u, i) => u === upstreams[i])) return;
      this.accepted.set(name, upstreams);
    }
    this.mux.sendControl(FrameType.SERVICES, { services: this.acceptedList() });
  }
}
