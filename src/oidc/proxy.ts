import http from 'node:http';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/**
 * The outbound proxy of HTTPS_PROXY. `authorization` (from the URL's user
 * info) is not enumerable, so that logging or serialising the settings never
 * shows it; `url` is the proxy's address without it.
 */
export interface ProxyServer {
  readonly url: string;
  /** Without brackets for IPv6. */
  readonly host: string;
  readonly port: number;
  /** `Basic …` for Proxy-Authorization, when the URL has user info. */
  readonly authorization: string | undefined;
}

/**
 * Parses HTTPS_PROXY: `http://[user:password@]host[:port]`, the scheme
 * optional (as curl and Go read it) and the port 80 by default.
 *
 * @throws TypeError whose message never repeats the user info
 */
export function parseProxyUrl(raw: string): ProxyServer {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    // The value is not repeated: it may hold a password.
    throw new TypeError('is not a URL such as http://proxy.example.com:3128');
  }
  if (url.protocol !== 'http:') {
    throw new TypeError(`must be an http:// proxy URL; ${url.protocol.slice(0, -1)} proxies are not supported`);
  }
  if (url.hostname === '') throw new TypeError('must name the proxy host');
  let authorization: string | undefined;
  if (url.username !== '' || url.password !== '') {
    try {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
    } catch {
      throw new TypeError('has user info that is not valid percent-encoding');
    }
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? 80 : Number(url.port);
  const server = { url: `http://${url.host}`, host, port } as ProxyServer;
  Object.defineProperty(server, 'authorization', { value: authorization, enumerable: false });
  return Object.freeze(server);
}

/** Whether a request to `hostname` (no brackets) on `port` bypasses the proxy. */
export type NoProxy = (hostname: string, port: number) => boolean;

/** HTTPS_PROXY with NO_PROXY: the route of every outbound call. */
export interface OutboundProxy {
  readonly server: ProxyServer;
  readonly bypasses: NoProxy;
}

const HOST_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

interface NoProxyRule {
  readonly port: number | undefined;
  matches(hostname: string, ip: 'ipv4' | 'ipv6' | undefined): boolean;
}

const ipFamily = (address: string) => {
  const version = net.isIP(address);
  return version === 4 ? 'ipv4' : version === 6 ? 'ipv6' : undefined;
};

/** Splits `host:port`, `[v6]:port` and `[v6]`; a bare IPv6 address or a CIDR has no port. */
function splitPort(entry: string): [string, string | undefined] {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed) return [bracketed[1]!, bracketed[2]];
  const colon = entry.lastIndexOf(':');
  if (colon === -1 || entry.indexOf(':') !== colon) return [entry, undefined];
  return [entry.slice(0, colon), entry.slice(colon + 1)];
}

function parseRule(raw: string): NoProxyRule | 'all' {
  const entry = raw.toLowerCase();
  if (entry === '*') return 'all';
  const problem = new TypeError(
    `${JSON.stringify(raw)} is neither a host, an address nor a CIDR, with an optional port`,
  );
  const [host, portText] = splitPort(entry);
  if (portText !== undefined && !/^\d{1,5}$/.test(portText)) throw problem;
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) throw problem;

  const [address = '', prefix, ...rest] = host.split('/');
  const type = ipFamily(address);
  if (type && prefix !== undefined) {
    const bits = Number(prefix);
    if (rest.length > 0 || port !== undefined || !/^\d+$/.test(prefix) || bits > (type === 'ipv4' ? 32 : 128)) {
      throw problem;
    }
    const subnet = new net.BlockList();
    subnet.addSubnet(address, bits, type);
    return { port, matches: (hostname, ip) => ip !== undefined && subnet.check(hostname, ip) };
  }
  if (type) {
    const single = new net.BlockList();
    single.addAddress(address, type);
    return { port, matches: (hostname, ip) => ip !== undefined && single.check(hostname, ip) };
  }
  // `*.example.com` reads as `.example.com` (Go); a trailing dot is the same name.
  const name = host.replace(/^\*(?=\.)/, '').replace(/\.$/, '');
  const subdomainsOnly = name.startsWith('.');
  const domain = subdomainsOnly ? name.slice(1) : name;
  if (!HOST_NAME.test(domain)) throw problem;
  return {
    port,
    matches: (hostname, ip) =>
      ip === undefined && (hostname.endsWith(`.${domain}`) || (!subdomainsOnly && hostname === domain)),
  };
}

/**
 * NO_PROXY as curl and Go read it: a comma list of `*` (every host), host
 * names (`example.com` matches it and its subdomains, `.example.com` and
 * `*.example.com` only its subdomains), IP addresses and CIDRs (matched only
 * against hosts written as addresses; names are not resolved for this), each
 * with an optional `:port` (CIDRs excepted) that limits it to that port.
 * Case does not matter; nothing is bypassed implicitly, not even localhost.
 *
 * @throws TypeError for an entry that is none of those (config.ts reports it)
 */
export function createNoProxy(entries: readonly string[]): NoProxy {
  const rules = entries.map(parseRule);
  if (rules.includes('all')) return () => true;
  const parsed = rules as NoProxyRule[];
  return (hostname, port) => {
    const host = hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, '')
      .replace(/\.$/, '');
    const ip = ipFamily(host);
    return parsed.some((rule) => (rule.port === undefined || rule.port === port) && rule.matches(host, ip));
  };
}

/**
 * Why a tunnel could not be opened. `message` and `publicReason` never
 * name the proxy (its address is the operator's, not the caller's business).
 */
export class ProxyError extends Error {
  override readonly name = 'ProxyError';

  /** The proxy did not answer in time: the same outcome as a request that timed out. */
  readonly timedOut: boolean;

  constructor(
    message: string,
    readonly publicReason: string,
    options: { cause?: unknown; timedOut?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.timedOut = options.timedOut ?? false;
  }
}

/** Opens a CONNECT tunnel to `host:port` through the proxy, within `timeoutMs`. */
export function openTunnel(server: ProxyServer, host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: server.host,
      port: server.port,
      method: 'CONNECT',
      path: authority,
      agent: false,
      headers: {
        host: authority,
        ...(server.authorization === undefined ? {} : { 'proxy-authorization': server.authorization }),
      },
    });
    const timer = setTimeout(
      () =>
        request.destroy(
          new ProxyError(
            `the outbound proxy did not open a tunnel to ${authority} in time`,
            'it did not answer in time',
            { timedOut: true },
          ),
        ),
      timeoutMs,
    );
    request.once('connect', (response: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      clearTimeout(timer);
      const status = response.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        socket.destroy();
        return reject(
          new ProxyError(
            `the outbound proxy refused a tunnel to ${authority} (HTTP ${status})`,
            'the outbound proxy refused to connect to it',
          ),
        );
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    request.once('error', (error: Error & { code?: string }) => {
      clearTimeout(timer);
      if (error instanceof ProxyError) return reject(error);
      reject(
        new ProxyError(
          `the outbound proxy could not be reached (${error.code ?? 'no answer'})`,
          'the outbound proxy could not be reached',
          { cause: error },
        ),
      );
    });
    request.end();
  });
}

/**
 * An https.Agent whose connections are TLS inside a CONNECT tunnel: TLS is
 * between the gateway and the issuer (the issuer's name, the agent's CAs), so
 * the proxy carries bytes it cannot read or alter. `lookup` is the direct
 * path's filtered resolver: the issuer's host must have an allowed address
 * before anything is sent to the proxy (ISSUER_ALLOW_PRIVATE_NETWORKS); the proxy itself is exempt.
 */
export class TunnelAgent extends https.Agent {
  constructor(
    private readonly server: ProxyServer,
    private readonly lookup: LookupFunction,
    private readonly timeoutMs: number,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(
    options: https.RequestOptions,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    const done = callback ?? (() => {});
    const host = String(options.hostname ?? options.host ?? 'localhost').replace(/^\[|\]$/g, '');
    const port = Number(options.port ?? 443);
    this.lookup(host, { all: true }, (error) => {
      if (error) return done(error, undefined as never);
      openTunnel(this.server, host, port, this.timeoutMs).then(
        (socket) => {
          const secure = tls.connect({
            socket,
            host,
            servername: net.isIP(host) ? undefined : host,
            ca: this.options.ca,
          });
          done(null, secure);
        },
        (failure: Error) => done(failure, undefined as never),
      );
    });
    return undefined;
  }
}
