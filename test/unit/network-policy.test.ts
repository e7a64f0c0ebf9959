/** Which addresses an issuer may resolve to: IPv6 forms that carry an IPv4 address are judged by that address. */
import { describe, expect, it } from '@jest/globals';
import { createNetworkPolicy, isNonPublicAddress } from '../../src/oidc/network-policy.js';

/** RFC 4380 §4: a Teredo address carries the server's IPv4 address and the client's, the latter inverted. */
const teredo = (server: string, client: string) => {
  const hex = (ipv4: string, invert = false) => {
    const value = ipv4.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
    const bits = (invert ? ~value >>> 0 : value).toString(16).padStart(8, '0');
    return `${bits.slice(0, 4)}:${bits.slice(4)}`;
  };
  return `2001:0:${hex(server)}:0:0:${hex(client, true)}`;
};

describe('isNonPublicAddress', () => {
  it.each([
    // IPv4
    ['0.0.0.0', true],
    ['0.1.2.3', true],
    ['10.0.0.1', true],
    ['100.64.0.1', true],
    ['100.128.0.1', false],
    ['127.0.0.1', true],
    ['169.254.169.254', true],
    ['172.16.0.1', true],
    ['172.32.0.1', false],
    ['192.0.0.8', true],
    ['192.168.1.1', true],
    ['198.18.0.1', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['8.8.8.8', false],
    ['1.1.1.1', false],
    // IPv6 of its own
    ['::', true],
    ['::1', true],
    ['fc00::1', true],
    ['fd00:ec2::254', true],
    ['fe80::1', true],
    ['fec0::1', true],
    ['ff02::1', true],
    ['2606:4700::1111', false],
    ['2606:4700:4700::1111', false],
    ['2001:4860:4860::8888', false],
    // IPv4-compatible, ::/96 (RFC 4291 §2.5.5.1)
    ['::127.0.0.1', true],
    ['::a9fe:a9fe', true],
    ['::10.0.0.1', true],
    ['::808:808', false],
    ['::8.8.8.8', false],
    // IPv4-mapped, ::ffff:0:0/96 (RFC 4291 §2.5.5.2)
    ['::ffff:10.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::FFFF:7F00:1', true],
    ['::ffff:169.254.169.254', true],
    ['::ffff:0:0', true],
    ['::ffff:8.8.8.8', false],
    ['::ffff:808:808', false],
    // NAT64 well-known prefix, 64:ff9b::/96 (RFC 6052 §2.1)
    ['64:ff9b::a9fe:a9fe', true],
    ['64:ff9b::127.0.0.1', true],
    ['64:ff9b::a00:1', true],
    ['64:ff9b::', true],
    ['64:ff9b::808:808', false],
    ['64:ff9b::1.1.1.1', false],
    // NAT64 local-use prefix, 64:ff9b:1::/48 (RFC 8215): whatever it embeds
    ['64:ff9b:1::', true],
    ['64:ff9b:1::808:808', true],
    ['64:ff9b:1:ffff:ffff:ffff:ffff:ffff', true],
    ['64:ff9b:2::808:808', false],
    // 6to4, 2002::/16 (RFC 3056 §2): the IPv4 address in bits 16-47
    ['2002:7f00:1::', true],
    ['2002:a9fe:a9fe::1', true],
    ['2002:c0a8:101::', true],
    ['2002::', true],
    ['2002:808:808::', false],
    ['2002:808:808:1:2:3:4:5', false],
    // Teredo, 2001::/32 (RFC 4380 §4): non-public when the server or the client is
    [teredo('8.8.8.8', '1.1.1.1'), false],
    [teredo('8.8.8.8', '10.0.0.1'), true],
    [teredo('8.8.8.8', '127.0.0.1'), true],
    [teredo('10.0.0.1', '1.1.1.1'), true],
    [teredo('169.254.169.254', '1.1.1.1'), true],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', false], // RFC 4380's example: 65.54.227.120 and 192.0.2.45
    // Not addresses at all
    ['localhost', true],
    ['', true],
  ])('%s → %s', (address, expected) => {
    expect(isNonPublicAddress(address)).toBe(expected);
  });
});

describe('createNetworkPolicy', () => {
  it('allows public addresses to any host', () => {
    const policy = createNetworkPolicy([]);
    expect(policy.allows('issuer.example', '8.8.8.8')).toBe(true);
    expect(policy.allows('issuer.example', '::ffff:8.8.8.8')).toBe(true);
    expect(policy.allows('issuer.example', '64:ff9b::808:808')).toBe(true);
    expect(policy.allows('issuer.example', '2002:808:808::1')).toBe(true);
    expect(policy.allows('issuer.example', '2606:4700::1111')).toBe(true);
  });

  it('refuses every non-public form without an allowance', () => {
    const policy = createNetworkPolicy([]);
    for (const address of ['127.0.0.1', '::ffff:127.0.0.1', '::127.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::']) {
      expect([address, policy.allows('issuer.example', address)]).toEqual([address, false]);
    }
  });

  it('lets an allowed IPv4 address through in every form that carries it', () => {
    const policy = createNetworkPolicy(['127.0.0.1']);
    for (const address of [
      '127.0.0.1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::127.0.0.1',
      '64:ff9b::7f00:1',
      '2002:7f00:1::',
      teredo('8.8.8.8', '127.0.0.1'),
    ]) {
      expect([address, policy.allows('issuer.example', address)]).toEqual([address, true]);
    }
    for (const address of ['127.0.0.2', '::ffff:127.0.0.2', '64:ff9b::7f00:2', '2002:7f00:2::', '::1', '10.0.0.1']) {
      expect([address, policy.allows('issuer.example', address)]).toEqual([address, false]);
    }
  });

  it('lets an allowed IPv4 subnet through in every form that carries it', () => {
    const policy = createNetworkPolicy(['10.0.0.0/8']);
    expect(policy.allows('issuer.example', '::ffff:10.1.2.3')).toBe(true);
    expect(policy.allows('issuer.example', '2002:a01:203::')).toBe(true);
    expect(policy.allows('issuer.example', '::ffff:192.168.0.1')).toBe(false);
  });

  it('needs every non-public IPv4 address of a Teredo address allowed', () => {
    const policy = createNetworkPolicy(['10.0.0.1']);
    expect(policy.allows('issuer.example', teredo('10.0.0.1', '8.8.8.8'))).toBe(true);
    expect(policy.allows('issuer.example', teredo('10.0.0.1', '127.0.0.1'))).toBe(false);
  });

  it('does not read :: and ::1 as IPv4-compatible forms of 0.0.0.0 and 0.0.0.1', () => {
    const policy = createNetworkPolicy(['0.0.0.0/8']);
    expect(policy.allows('issuer.example', '0.0.0.1')).toBe(true);
    expect(policy.allows('issuer.example', '::0.1.2.3')).toBe(true);
    expect(policy.allows('issuer.example', '::1')).toBe(false);
    expect(policy.allows('issuer.example', '::')).toBe(false);
  });

  it('takes IPv6 entries as they are written', () => {
    const policy = createNetworkPolicy(['64:ff9b:1::/48', 'fd00::/8', '::ffff:127.0.0.1']);
    expect(policy.allows('issuer.example', '64:ff9b:1::a00:1')).toBe(true);
    expect(policy.allows('issuer.example', 'fd12::1')).toBe(true);
    expect(policy.allows('issuer.example', '::ffff:127.0.0.1')).toBe(true);
    expect(policy.allows('issuer.example', 'fe80::1')).toBe(false);
  });

  it('allows a listed host whatever it resolves to', () => {
    const policy = createNetworkPolicy(['issuer.internal']);
    expect(policy.allows('Issuer.Internal', '::ffff:10.0.0.1')).toBe(true);
    expect(policy.allows('other.internal', '::ffff:10.0.0.1')).toBe(false);
  });

  it('refuses an entry that is neither a host, an address nor a CIDR', () => {
    expect(() => createNetworkPolicy(['10.0.0.0/x'])).toThrow(TypeError);
  });
});
