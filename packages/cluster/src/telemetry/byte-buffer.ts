/**
 * A growable byte buffer that strings are appended to as UTF-8: an export request's body is written here piece
 * by piece, and the buffer is kept for the next export. Before, a batch was one JSON.stringify (a 1–2 MB string,
 * allocated in V8's large-object space and freed only by a full GC) and then Buffer.from (a second copy, after a
 * pass to count its bytes); here each piece is encoded once, into memory allocated once.
 */
export class ByteBuffer {
  #buf: Buffer;
  #len = 0;

  constructor(initialBytes = 64 * 1024) {
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  write(s: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair, two units, takes 4), so this much room
    // means Buffer#write never truncates.
    const room = s.length * 3;
    if (this.#buf.length - this.#len < room) this.#grow(room);
    this.#len += this.#buf.write(s, this.#len);
  }

  #grow(room: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + room));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  /** The bytes written since the last reset (a view: valid until the next write or reset). */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }

  /** Bytes allocated (to decide whether a buffer that grew for one big batch is worth keeping). */
  get capacity(): number {
    return this.#buf.length;
  }

  reset(): void {
    this.#len = 0;
  }
}
