import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';

/**
 * Who a per-address limit counts: the TCP peer (never `X-Forwarded-For`, which the client writes). IPv4 and
 * IPv4-mapped peers by address; IPv6 peers by their /64, because one host is routinely given a whole /64 and
 * could otherwise take a fresh address for every request.
 */
export function sourceKey(req: IncomingMessage): string {
  const addr = req.socket.remoteAddress ?? 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) return mapped[1];
  if (!isIPv6(addr)) return addr;
  return `${expandIPv6(addr).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (zone and embedded IPv4 tail ignored: only the /64 is used). */
function expandIPv6(addr: string): string[] {
  const [head, tail = ''] = addr.split('%')[0].split('::');
  const left = head ? head.split(':') : [];
  const right = addr.includes('::') && tail ? tail.split(':') : [];
  const fill = addr.includes('::') ? Array(Math.max(0, 8 - left.length - right.length)).fill('0') : [];
  return [...left, ...fill, ...right].map((g) => (g.includes('.') ? '0' : g.toLowerCase().replace(/^0+(?=.)/, '')));
}
