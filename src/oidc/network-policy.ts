import net from 'node:net';

/**
 * Addresses an issuer must not resolve to unless allowed (docs/reference.md §4): loopback, private, link-local, metadata, ...
 * IPv6 addresses that carry an IPv4 address are judged by that address instead (see `carriedIPv4`).
 */
const NON_PUBLIC: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, and the cloud metadata service 169.254.169.254
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['224.0.0.0', 3, 'ipv4'], // multicast and reserved, up to 255.255.255.255
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['64:ff9b:1::', 48, 'ipv6'], // RFC 8215 local-use NAT64: where the IPv4 address sits is the operator's choice
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['fec0::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
  ['fd00:ec2::254', 128, 'ipv6'], // AWS metadata over IPv6
];

const family = (address: string): 'ipv4' | 'ipv6' | undefined => {
  const version = net.isIP(address);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
};

const nonPublic = new net.BlockList();
for (const [address, prefix, type] of NON_PUBLIC) nonPublic.addSubnet(address, prefix, type);

/** The eight 16-bit groups of an address that net.isIP took as IPv6 (RFC 4291 §2.2), without its zone. */
function ipv6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  if (tail === undefined) return groups(head);
  const [start, end] = [groups(head), groups(tail)];
  return [...start, ...new Array<number>(8 - start.length - end.length).fill(0), ...end];
}

const ipv4Of = (high: number, low: number) => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');

/**
 * The IPv4 addresses that an IPv6 address reaches through, for the forms
 * that embed one at a fixed place: a packet to such an address ends up at
 * (or passes through) the IPv4 address, so it is that address that counts.
 */
function carriedIPv4(address: string): string[] {
  const g = ipv6Groups(address);
  const zero = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  if (zero(0, 5) && g[5] === 0xffff) return [ipv4Of(g[6]!, g[7]!)]; // IPv4-mapped, RFC 4291 §2.5.5.2
  // IPv4-compatible (RFC 4291 §2.5.5.1), except :: and ::1, which are IPv6's own.
  if (zero(0, 6) && (g[6] !== 0 || g[7]! > 1)) return [ipv4Of(g[6]!, g[7]!)];
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return [ipv4Of(g[6]!, g[7]!)]; // NAT64, RFC 6052 §2.1
  if (g[0] === 0x2002) return [ipv4Of(g[1]!, g[2]!)]; // 6to4, RFC 3056 §2
  // Teredo (RFC 4380 §4): the server's address, and the client's with every bit inverted.
  if (g[0] === 0x2001 && g[1] === 0) return [ipv4Of(g[2]!, g[3]!), ipv4Of(g[6]! ^ 0xffff, g[7]! ^ 0xffff)];
  return [];
}

/** Whether an address is loopback, private, link-local or otherwise not on the public internet. */
export function isNonPublicAddress(address: string): boolean {
  const type = family(address);
  if (type === undefined) return true;
  const carried = type === 'ipv6' ? carriedIPv4(address) : [];
  if (carried.length === 0) return nonPublic.check(address, type);
  return carried.some((ipv4) => nonPublic.check(ipv4, 'ipv4'));
}

/**
 * Which issuer hosts may be reached on non-public addresses:
 * ISSUER_ALLOW_PRIVATE_NETWORKS lists host names, addresses and CIDRs.
 *
 * @throws TypeError for an entry that is none of those (config.ts reports it)
 */
export function createNetworkPolicy(allowed: readonly string[]) {
  const allowedAddresses = new net.BlockList();
  const allowedHosts = new Set<string>();
  for (const entry of allowed) {
    const [address = '', prefix] = entry.split('/');
    const type = family(address);
    if (type && prefix === undefined) allowedAddresses.addAddress(address, type);
    else if (type && /^\d+$/.test(prefix!)) allowedAddresses.addSubnet(address, Number(prefix), type);
    else if (/^[a-z0-9.-]+$/i.test(entry)) allowedHosts.add(entry.toLowerCase());
    else throw new TypeError(`${JSON.stringify(entry)} is neither a host, an address nor a CIDR`);
  }
  return {
    /** Whether `hostname` may be reached at `address`; public addresses always may. */
    allows(hostname: string, address: string): boolean {
      if (!isNonPublicAddress(address) || allowedHosts.has(hostname.toLowerCase())) return true;
      const type = family(address);
      if (type === undefined) return false;
      if (allowedAddresses.check(address, type)) return true;
      // An IPv6 form of an allowed IPv4 address is allowed too, when every non-public address it carries is.
      const carried = type === 'ipv6' ? carriedIPv4(address).filter(isNonPublicAddress) : [];
      return carried.length > 0 && carried.every((ipv4) => allowedAddresses.check(ipv4, 'ipv4'));
    },
  };
}

export type NetworkPolicy = ReturnType<typeof createNetworkPolicy>;
