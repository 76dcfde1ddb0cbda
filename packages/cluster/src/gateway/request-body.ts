import type { IncomingMessage } from 'node:http';
import { parseJsonBytes } from '@octelium-ts/shared';
import { readBodyLimited } from '../server/read-body.js';

const UNPARSED = Symbol('unparsed');

/**
 * The request body of one gateway request, owned by its context: read from the client at most once, parsed as
 * JSON at most once per version, and replaced (never patched) by plugins — a replacement invalidates the parsed
 * form, so policies, later plugins, MCP stages, the AccessLog and error rendering all see what goes upstream.
 *
 * `bodyMap` visibility: the parsed body is always available to the gateway itself (JSON-RPC ids, MCP checks), but
 * is shown to policies and the AccessLog only once a stage exposes it (`body.mode: JSON`, MCP Services), as the
 * design's `bodyMap` is.
 */
export class RequestBody {
  #bytes?: Buffer;
  #json: unknown = UNPARSED;
  #exposed = false;
  /** The exposed bodyMap before the first rewrite: the AccessLog keeps it beside the rewritten one. */
  #original: unknown = UNPARSED;

  constructor(private readonly req: IncomingMessage) {}

  /** The bytes read (or set by a plugin); undefined while the body still streams from the client. */
  get bytes(): Buffer | undefined {
    return this.#bytes;
  }

  /** Reads the whole body (once; later calls return what was read). */
  async read(limit: number): Promise<Buffer> {
    this.#bytes ??= await readBodyLimited(this.req, limit);
    return this.#bytes;
  }

  /** A plugin's rewrite. The first one keeps the exposed original for the AccessLog. */
  replace(bytes: Buffer): void {
    if (this.#exposed && this.#original === UNPARSED) this.#original = this.parsed();
    this.#bytes = bytes;
    this.#json = UNPARSED;
  }

  /** The body as JSON (strict UTF-8, bounded depth); throws a JsonBodyError when it is not acceptable. */
  json(): unknown {
    if (this.#json === UNPARSED) this.#json = this.#bytes?.length ? parseJsonBytes(this.#bytes) : undefined;
    return this.#json;
  }

  /** The body as JSON, or undefined when it is absent or not acceptable JSON. */
  parsed(): unknown {
    try {
      return this.json();
    } catch {
      return undefined;
    }
  }

  /** Makes the parsed body visible as `bodyMap`; `value` when a stage parsed it itself. */
  expose(value?: unknown): void {
    this.#exposed = true;
    if (value !== undefined) this.#json = value;
  }

  /** What policies and the AccessLog see as `bodyMap`. */
  get map(): unknown {
    return this.#exposed ? this.parsed() : undefined;
  }

  /** The exposed bodyMap before a plugin rewrote the body (undefined when none did). */
  get originalMap(): unknown {
    return this.#original === UNPARSED ? undefined : this.#original;
  }
}
