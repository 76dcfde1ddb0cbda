import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';

/**
 * Addresses an outbound fetch made on a client's behalf (CIMD) must never reach: everything that is not the
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
