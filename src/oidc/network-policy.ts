import net from 'node:net';

/** Addresses an issuer must not resolve to unless allowed (SPEC §4): loopback, private, link-local, metadata, ... */
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
  ['64:ff9b::', 96, 'ipv6'], // NAT64 of any IPv4 address
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

/** Whether an address is loopback, private, link-local or otherwise not on the public internet. */
export function isNonPublicAddress(address: string): boolean {
  const type = family(address);
  return type === undefined || nonPublic.check(address, type);
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
      if (!isNonPublicAddress(address)) return true;
      const type = family(address);
      return allowedHosts.has(hostname.toLowerCase()) || (type !== undefined && allowedAddresses.check(address, type));
    },
  };
}

export type NetworkPolicy = ReturnType<typeof createNetworkPolicy>;
