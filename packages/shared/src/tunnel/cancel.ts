/**
 * What the tunnel needs of an AbortSignal: whether and why it was aborted, and 'abort' listeners. The gateway's own
 * AbortSignal is one; CancelSignal is another.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A cancel signal for one tunnel exchange, for the places that make one per request (the agent's upstream request,
 * the holding replica's forwarded stream). An AbortController costs an EventTarget, and aborting it a DOMException:
 * measurable shares of the CPU per request. Listeners run once, on the first abort, without an event argument;
 * undici accepts it as a request's signal (it has addEventListener).
 */
export class CancelSignal implements AbortSignalLike {
  aborted = false;
  reason?: unknown;
  #listeners?: Array<() => void>;

  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    if (!this.aborted) (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.#listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.#listeners!.splice(i, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    for (const listener of listeners ?? []) listener();
  }
}

/**
 * The AbortController of one gateway request (aborted when the client goes away), built on CancelSignal: every
 * request has one, and an AbortController with its EventTarget was a measurable share of the CPU per request.
 * `abortSignal` gives a real AbortSignal, made on first use, for the APIs that need one (`AbortSignal.any`).
 */
export class CancelController {
  readonly signal = new CancelSignal();
  #real?: AbortController;

  abort(reason?: unknown): void {
    this.signal.abort(reason);
    this.#real?.abort(reason);
  }

  get abortSignal(): AbortSignal {
    if (!this.#real) {
      this.#real = new AbortController();
      if (this.signal.aborted) this.#real.abort(this.signal.reason);
    }
    return this.#real.signal;
  }
}
