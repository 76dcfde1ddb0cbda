import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import { networkInterfaces } from 'node:os';
import { buildConnector } from 'undici';

/**
 * Guards for outbound requests the cluster makes to URLs it did not choose itself: CIMD documents (oauth/cimd.ts)
 * and Lua `http.client` calls (plugins/lua/http-fetch.ts).
 *
 * Addresses such a fetch must never reach: everything that is not the
 * public Internet — private, loopback, link-local (169.254.169.254, cloud metadata!), CGNAT, documentation,
 * benchmarking, multicast, reserved, and the IPv6 equivalents, including the forms that embed an IPv4 address.
 */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32],
  ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) BLOCKED.addSubnet(net, prefix, 'ipv6');

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** `::ffff:10.0.0.1` and friends are checked as the IPv4 address they carry. */
function normalize(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } {
  const bare = ip.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return { ip: mapped[1], family: 'ipv4' };
  return { ip: bare, family: isIP(bare) === 6 ? 'ipv6' : 'ipv4' };
}

export function isLoopbackAddress(ip: string): boolean {
  const n = normalize(ip);
  return LOOPBACK.check(n.ip, n.family);
}

/** True for a publicly routable unicast address; `allowLoopback` (dev/test flag only) also lets loopback through. */
export function isAllowedAddress(ip: string, allowLoopback = false): boolean {
  const n = normalize(ip);
  if (isIP(n.ip) === 0) return false;
  if (allowLoopback && LOOPBACK.check(n.ip, n.family)) return true;
  return !BLOCKED.check(n.ip, n.family);
}

export class SsrfError extends Error {}

/**
 * A `lookup` for net/tls.connect that refuses to resolve to a blocked address. The connection is made to the
 * address checked here, so a DNS answer that changes between check and connect (rebinding, TOCTOU) cannot
 * slip a private address in.
 */
export function guardedLookup(allowLoopback: boolean): LookupFunction {
  return ((hostname: string, options: object, callback: (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4);
      const list = addresses as Array<{ address: string; family: number }>;
      const bad = list.find((a) => !isAllowedAddress(a.address, allowLoopback));
      if (bad || !list.length) return callback(new SsrfError(`${hostname} resolves to a non-public address (${bad?.address ?? 'none'})`), '', 4);
      if ((options as { all?: boolean }).all) return callback(null, list);
      callback(null, list[0].address, list[0].family);
    });
  }) as LookupFunction;
}

/** An IP literal host (`[::1]` included), or undefined for a DNS name. */
export function ipLiteral(hostname: string): string | undefined {
  const bare = hostname.replace(/^\[|\]$/g, '');
  return isIP(bare) ? bare : undefined;
}

/**
 * Whether an address is this host's own: loopback, unspecified (`0.0.0.0`, `::` reach the local host), or an
 * address of one of its interfaces. Used with the listener's port to refuse requests to the cluster itself.
 */
export function isLocalAddress(ip: string): boolean {
  const n = normalize(ip);
  if (LOOPBACK.check(n.ip, n.family) || n.ip === '0.0.0.0' || n.ip === '::') return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (normalize(a.address).ip === n.ip) return true;
  }
  return false;
}

export interface GuardOptions {
  /** Let private, loopback and link-local addresses through (an explicit per-use opt-in). */
  allowPrivateNetworks?: boolean;
  /** A reason to refuse a connection to this peer even when it is allowed otherwise (e.g. the cluster's own listener). */
  refusePeer?: (address: string, port: number) => string | undefined;
}

/**
 * Refuses a URL whose host is an IP literal that the guard would refuse: net.connect does not call `lookup` for
 * literals, so the DNS check in guardedConnector never sees them.
 */
export function checkUrlHost(url: URL, opts: GuardOptions): void {
  const ip = ipLiteral(url.hostname);
  if (ip && !opts.allowPrivateNetworks && !isAllowedAddress(ip)) throw new SsrfError(`${url.hostname} is not a public address`);
}

/**
 * An undici `connect` that resolves names through guardedLookup (unless private networks are allowed) and,
 * once connected, checks the actual peer with `refusePeer` — after DNS, so a name that resolves to the
 * refused listener is caught too — before a byte is sent.
 */
export function guardedConnector(opts: GuardOptions): buildConnector.connector {
  const base = buildConnector(opts.allowPrivateNetworks ? {} : { lookup: guardedLookup(false) });
  const refuse = opts.refusePeer;
  if (!refuse) return base;
  return (options, callback) =>
    base(options, (err, socket) => {
      if (err || !socket) return callback(err ?? new SsrfError('no socket'), null);
      const reason = refuse(socket.remoteAddress ?? '', socket.remotePort ?? 0);
      if (!reason) return callback(null, socket);
      socket.destroy();
      callback(new SsrfError(reason), null);
    });
}
