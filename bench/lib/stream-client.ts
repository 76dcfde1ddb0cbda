/**
 * Holds many idle MCP SSE streams (GET /mcp, Accept: text/event-stream) on raw sockets — a few hundred bytes of
 * client state each, so this process is never the limit — and measures first-event latency of new streams.
 * Child process; IPC requests: open, probe, stats, closeAll.
 */
import { connect, type Socket } from 'node:net';
import { sendReady, serveIpc } from './ipc.js';
import { percentile } from './util.js';

interface Target { port: number; path: string; headers: Record<string, string> }

const open = new Set<Socket>();
let closedByPeer = 0;

/** Opens one stream; resolves with ms until the first SSE event arrived (the socket stays open unless `close`). */
function openStream(t: Target, keep: boolean, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = connect(t.port, '127.0.0.1');
    s.setNoDelay(true);
    let buf = '';
    let done = false;
    const timer = setTimeout(() => fail(new Error('no first event within timeout')), timeoutMs);
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    s.once('connect', () => {
      const h = Object.entries(t.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      s.write(`GET ${t.path} HTTP/1.1\r\nhost: 127.0.0.1:${t.port}\r\naccept: text/event-stream\r\n${h}\r\n`);
    });
    s.on('data', (d: Buffer) => {
      if (done) return;
      buf += d.toString('latin1');
      if (buf.length > 16_384) return fail(new Error('no event in the first 16 KB'));
      if (!buf.startsWith('HTTP/1.1 200')) {
        if (buf.includes('\r\n')) fail(new Error(buf.split('\r\n')[0]));
        return;
      }
      if (!buf.includes('event: ready')) return;
      done = true;
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (keep) {
        open.add(s);
        buf = '';
        s.once('close', () => {
          if (open.delete(s)) closedByPeer++;
        });
      } else {
        s.destroy();
      }
      resolve(ms);
    });
    s.on('error', fail);
    s.once('close', () => fail(new Error('closed before the first event')));
  });
}

async function openMany(t: Target, count: number, parallel: number, timeoutMs = 30_000) {
  const lat: number[] = [];
  const errors = new Map<string, number>();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) {
      next++;
      try {
        lat.push(await openStream(t, true, timeoutMs));
      } catch (e) {
        const m = (e as Error).message;
        errors.set(m, (errors.get(m) ?? 0) + 1);
      }
    }
  }));
  lat.sort((a, b) => a - b);
  return { opened: lat.length, failed: count - lat.length, errors: Object.fromEntries(errors), seconds: (performance.now() - t0) / 1000, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), held: open.size };
}

/** `n` streams one after another: open, wait for the first event, close. */
async function probe(t: Target, n: number) {
  const lat: number[] = [];
  let failed = 0;
  for (let i = 0; i < n; i++) {
    try {
      lat.push(await openStream(t, false, 10_000));
    } catch {
      failed++;
    }
  }
  lat.sort((a, b) => a - b);
  return { n, failed, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), max: lat.at(-1) ?? NaN };
}

serveIpc({
  open: (m) => openMany(m.target as Target, Number(m.count), Number(m.parallel ?? 200), Number(m.timeoutMs ?? 30_000)),
  probe: (m) => probe(m.target as Target, Number(m.n ?? 100)),
  stats: () => ({ held: open.size, closedByPeer }),
  closeAll: async () => {
    const n = open.size;
    for (const s of open) s.destroy();
    open.clear();
    return { closed: n };
  },
});
sendReady();
