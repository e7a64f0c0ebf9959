/** HTTPS_PROXY and NO_PROXY as curl and Go read them (docs/operator-guide.md › Outbound proxy). */
import { inspect } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { createNoProxy, parseProxyUrl } from '../../src/oidc/proxy.js';

describe('parseProxyUrl', () => {
  it('reads host and port, with port 80 and the http scheme by default', () => {
    expect(parseProxyUrl('http://proxy.corp:3128')).toMatchObject({
      url: 'http://proxy.corp:3128',
      host: 'proxy.corp',
      port: 3128,
      authorization: undefined,
    });
    expect(parseProxyUrl('http://proxy.corp')).toMatchObject({ host: 'proxy.corp', port: 80 });
    expect(parseProxyUrl('proxy.corp:8080')).toMatchObject({ url: 'http://proxy.corp:8080', port: 8080 });
    expect(parseProxyUrl('http://[fd00::1]:3128/')).toMatchObject({ host: 'fd00::1', port: 3128 });
  });

  it('turns user info into Proxy-Authorization Basic, percent-decoded, and never shows it', () => {
    const server = parseProxyUrl('http://svc%40corp:p%3Ass@proxy.corp:3128');
    expect(server.authorization).toBe(`Basic ${Buffer.from('svc@corp:p:ss').toString('base64')}`);
    expect(server.url).toBe('http://proxy.corp:3128');
    for (const shown of [JSON.stringify(server), inspect(server), JSON.stringify({ ...server })]) {
      expect(shown).not.toMatch(/p%3Ass|p:ss|Basic/);
    }
  });

  it.each([
    ['https://proxy.corp:3128', 'must be an http:// proxy URL; https proxies are not supported'],
    ['socks5://proxy.corp:1080', 'must be an http:// proxy URL; socks5 proxies are not supported'],
    ['http://user:secret@proxy corp', 'is not a URL such as http://proxy.example.com:3128'],
    ['http://user:secret@:3128', 'is not a URL such as http://proxy.example.com:3128'],
    ['http://user:%E0%A4%A@proxy.corp', 'has user info that is not valid percent-encoding'],
  ])('refuses %s, without repeating a password', (raw, message) => {
    expect(() => parseProxyUrl(raw)).toThrow(new TypeError(message));
  });
});

describe('createNoProxy', () => {
  const bypasses = (noProxy: string, host: string, port = 443) =>
    createNoProxy(noProxy.split(',').filter((entry) => entry !== ''))(host, port);

  it.each([
    // a name matches itself and its subdomains, not names that merely end alike
    ['example.com', 'example.com', true],
    ['example.com', 'idp.example.com', true],
    ['example.com', 'a.b.example.com', true],
    ['example.com', 'badexample.com', false],
    ['example.com', 'example.com.evil.io', false],
    // a leading dot (or *.) matches subdomains only, as in Go
    ['.example.com', 'idp.example.com', true],
    ['.example.com', 'example.com', false],
    ['*.example.com', 'idp.example.com', true],
    ['*.example.com', 'example.com', false],
    // case and a trailing dot do not matter
    ['Example.COM', 'IDP.example.com', true],
    ['example.com.', 'idp.example.com.', true],
    // * alone bypasses everything
    ['*', 'anything.example', true],
    ['internal.corp,*', '8.8.8.8', true],
    // addresses match hosts written as addresses; names are never resolved for this
    ['10.0.0.1', '10.0.0.1', true],
    ['10.0.0.1', '10.0.0.2', false],
    ['10.0.0.0/8', '10.20.30.40', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['127.0.0.1', 'localhost', false],
    ['fd00::/8', 'fd12::1', true],
    ['fd00::/8', '[fd12::1]', true],
    ['::1', '0:0:0:0:0:0:0:1', true],
    ['[::1]', '::1', true],
    // nothing is bypassed implicitly
    ['', 'localhost', false],
    ['', '127.0.0.1', false],
    ['example.com', 'localhost', false],
  ])('NO_PROXY=%s bypasses %s: %s', (noProxy, host, expected) => {
    expect(bypasses(noProxy, host)).toBe(expected);
  });

  it('limits an entry with a port to that port', () => {
    expect(bypasses('example.com:8443', 'idp.example.com', 8443)).toBe(true);
    expect(bypasses('example.com:8443', 'idp.example.com', 443)).toBe(false);
    expect(bypasses('10.0.0.1:443', '10.0.0.1', 443)).toBe(true);
    expect(bypasses('10.0.0.1:443', '10.0.0.1', 8443)).toBe(false);
    expect(bypasses('[fd00::1]:443', 'fd00::1', 443)).toBe(true);
    expect(bypasses('[fd00::1]:443', 'fd00::1', 80)).toBe(false);
  });

  it.each([
    'exa mple.com',
    'example.com:https',
    'example.com:0',
    'example.com:70000',
    '10.0.0.0/33',
    '10.0.0.0/8:443',
    'http://example.com',
    '*example.com',
    '[::1',
  ])('refuses %s', (entry) => {
    expect(() => createNoProxy([entry])).toThrow(
      new TypeError(`${JSON.stringify(entry)} is neither a host, an address nor a CIDR, with an optional port`),
    );
  });
});
