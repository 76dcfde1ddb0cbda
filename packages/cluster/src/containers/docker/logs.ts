import { PassThrough, type Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type Docker from 'dockerode';
import type { LogLine } from '../runtime.js';

/** Splits Docker's multiplexed log format (8-byte frame header: stream, 0, 0, 0, big-endian length) into lines. */
export function demuxBuffer(buf: Buffer, replica: string): LogLine[] {
  const out: LogLine[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const stream = buf[i] === 2 ? 'stderr' : 'stdout';
    const len = buf.readUInt32BE(i + 4);
    const text = buf.subarray(i + 8, i + 8 + len).toString('utf8');
    for (const line of text.split('\n')) if (line) out.push({ replica, stream, text: line });
    i += 8 + len;
  }
  return out;
}

/** The last `tail` lines a container wrote (for failure messages). */
export async function tailLogs(c: Docker.Container, tail: number): Promise<string[]> {
  const buf = (await c.logs({ stdout: true, stderr: true, follow: false, tail })) as unknown as Buffer;
  return demuxBuffer(buf, '').map((l) => l.text);
}

/** Follows one container's stdout/stderr as lines until the stream ends or `signal` aborts. */
export async function* followContainer(docker: Docker, c: Docker.Container, replica: string, tail: number | undefined, signal: AbortSignal): AsyncIterable<LogLine> {
  const raw = (await c.logs({ stdout: true, stderr: true, follow: true, tail: tail ?? 'all', abortSignal: signal } as never)) as unknown as Readable;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  docker.modem.demuxStream(raw, stdout, stderr);
  const end = () => { stdout.end(); stderr.end(); };
  raw.once('end', end);
  raw.once('close', end);
  raw.once('error', end);
  signal.addEventListener('abort', () => { raw.destroy(); end(); }, { once: true });
  const queue: LogLine[] = [];
  let wake: (() => void) | undefined;
  let open = 2;
  for (const [stream, s] of [['stdout', stdout], ['stderr', stderr]] as const) {
    const rl = createInterface({ input: s, crlfDelay: Infinity });
    rl.on('line', (text) => { queue.push({ replica, stream, text }); wake?.(); });
    rl.on('close', () => { open--; wake?.(); });
  }
  while (true) {
    while (queue.length) yield queue.shift()!;
    if (open === 0) return;
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
}

/** Interleaves several async iterables as items arrive. */
export async function* merge<T>(sources: AsyncIterable<T>[]): AsyncIterable<T> {
  const its = sources.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ i: number; r: IteratorResult<T> }>>();
  its.forEach((it, i) => pending.set(i, it.next().then((r) => ({ i, r }))));
  while (pending.size) {
    const { i, r } = await Promise.race(pending.values());
    if (r.done) { pending.delete(i); continue; }
    pending.set(i, its[i].next().then((r2) => ({ i, r: r2 })));
    yield r.value;
  }
}
