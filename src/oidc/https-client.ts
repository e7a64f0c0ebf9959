import dns from 'node:dns';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import tls from 'node:tls';
import { ProxyError, TunnelAgent, type OutboundProxy } from './proxy.js';

export interface OutboundLimits {
  /** docs/reference.md §3.2: 5 s for discovery, JWKS and TokenReview. */
  readonly timeoutMs: number;
  /** docs/reference.md §3.2: responses ≤ 1 MiB. */
  readonly maxBytes: number;
}

export const DEFAULT_OUTBOUND_LIMITS: OutboundLimits = { timeoutMs: 5000, maxBytes: 1024 * 1024 };

/** Whether `hostname` may be reached at `address` (docs/reference.md §4, ISSUER_ALLOW_PRIVATE_NETWORKS). */
export type AddressFilter = (hostname: string, address: string) => boolean;

const allowAll: AddressFilter = () => true;

/**
 * Why an outbound call failed. `message` has the detail (URL, status, socket
 * code) for the log and for admins; `publicReason` says the same without
 * internal addresses, ports, statuses or socket codes, for anyone.
 */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  readonly status: number | undefined;
  readonly publicReason: string;

  constructor(message: string, options: { status?: number; publicReason?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.publicReason = options.publicReason ?? message;
  }
}

/** The words for a certificate the gateway does not trust (docs/security.md). */
export const UNTRUSTED_CERTIFICATE = "the issuer's TLS certificate is not trusted (set ISSUER_CA_FILE)";

/** OpenSSL's verification failures, as Node names them on the error's `code`. */
const TLS_VERIFICATION_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export interface JsonResponse {
  readonly status: number;
  readonly body: unknown;
  /** How long the answer may be cached, from its Cache-Control header. */
  readonly maxAgeSeconds?: number;
}

export type Headers = Readonly<Record<string, string>>;

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly url: string;
}

export type FetchLike = (
  url: string,
  init: { method: string; headers?: Readonly<Record<string, string>>; body?: unknown },
) => Promise<Response>;

export interface HttpsJsonClient {
  /**
   * GETs a JSON document. Redirects are not followed; a non-2xx status, an
   * oversized or non-JSON body and a timeout are OutboundErrors.
   */
  getJson(url: string, headers?: Headers): Promise<JsonResponse>;
  /** POSTs a JSON body and reads a JSON answer, on the same terms as getJson. */
  postJson(url: string, body: unknown, headers?: Headers): Promise<JsonResponse>;
  /** Closes the kept-alive connections. */
  close(): void;
}

/**
 * The one way the gateway talks to issuers and the cluster: https only, extra
 * CAs on top of the system roots (ISSUER_CA_FILE), bounded in time and size,
 * through the outbound proxy (HTTPS_PROXY) unless NO_PROXY matches.
 */
export function createHttpsJsonClient(
  extraCaPem: readonly string[],
  {
    limits = DEFAULT_OUTBOUND_LIMITS,
    allowAddress = allowAll,
    proxy,
  }: { limits?: OutboundLimits; allowAddress?: AddressFilter; proxy?: OutboundProxy | undefined } = {},
): HttpsJsonClient & {
  /** A fetch for libraries that bring their own protocol (openid-client): any status resolves, redirects do not. */
  readonly fetch: FetchLike;
} {
  const agentOptions = {
    keepAlive: true,
    ca: extraCaPem.length > 0 ? [...tls.rootCertificates, ...extraCaPem] : undefined,
  };
  const agent = new https.Agent(agentOptions);
  const refused = (url: string) =>
    new OutboundError(`${url} resolves to a non-public address; allow it with ISSUER_ALLOW_PRIVATE_NETWORKS`, {
      publicReason: 'it resolves to an address that is not allowed (ISSUER_ALLOW_PRIVATE_NETWORKS)',
    });

  /** DNS answers are filtered before connecting, so that a rebinding answer is never dialled. */
  const lookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 4);
      const usable = addresses.filter((entry) => allowAddress(hostname, entry.address));
      if (usable.length === 0) {
        return callback(Object.assign(new Error('non-public address'), { code: 'ENONPUBLIC' }), '', 4);
      }
      if (options.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
  const tunnelAgent = proxy && new TunnelAgent(proxy.server, lookup, limits.timeoutMs, agentOptions);

  /** One bounded request; any status but a redirect resolves, with the body read whole. */
  function sendRaw(method: 'GET' | 'POST', url: string, headers: Headers, payload?: string): Promise<RawResponse> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(
        new OutboundError(`${JSON.stringify(url)} is not a URL`, { publicReason: 'an address it names is not a URL' }),
      );
    }
    if (target.protocol !== 'https:') {
      return Promise.reject(
        new OutboundError(`${url} is not https`, { publicReason: 'an address it names is not https' }),
      );
    }
    const hostname = target.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(hostname) && !allowAddress(hostname, hostname)) return Promise.reject(refused(url));
    const tunnelled = tunnelAgent !== undefined && !proxy!.bypasses(hostname, Number(target.port || 443));

    return new Promise<RawResponse>((resolve, reject) => {
      const request = https.request(
        target,
        {
          method,
          agent: tunnelled ? tunnelAgent : agent,
          lookup,
          headers: { accept: 'application/json', ...headers },
          signal: AbortSignal.timeout(limits.timeoutMs),
        },
        (response) => {
          const status = response.statusCode ?? 0;
          const fail = (message: string, publicReason: string) => {
            response.destroy();
            reject(new OutboundError(message, { status, publicReason }));
          };
          const tooLarge = () =>
            fail(
              `${url} answered more than ${limits.maxBytes} bytes`,
              `its answer is larger than ${limits.maxBytes} bytes`,
            );
          if (status >= 300 && status < 400) {
            return fail(
              `${url} answered ${status}; redirects are not followed`,
              'it answered with a redirect, which is not followed',
            );
          }
          if (Number(response.headers['content-length'] ?? 0) > limits.maxBytes) return tooLarge();
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > limits.maxBytes) tooLarge();
            else chunks.push(chunk);
          });
          response.on('error', (error) => reject(toOutboundError(url, error)));
          response.on('end', () => resolve({ status, headers: response.headers, body: Buffer.concat(chunks), url }));
        },
      );
      // The address actually connected to is checked too: it is what a request reaches.
      // Through the proxy, that is the proxy, which the operator chose; the issuer's host was checked before CONNECT.
      request.on('socket', (socket) => {
        if (tunnelled) return;
        const check = () => {
          if (socket.remoteAddress && !allowAddress(hostname, socket.remoteAddress)) request.destroy(refused(url));
        };
        // A kept-alive socket is connected already; waiting for its 'connect' would add a listener per request.
        if (socket.connecting) socket.once('connect', check);
        else check();
      });
      request.on('error', (error: Error & { code?: string }) =>
        reject(error.code === 'ENONPUBLIC' ? refused(url) : toOutboundError(url, error)),
      );
      request.end(payload);
    });
  }

  async function sendJson(method: 'GET' | 'POST', url: string, headers: Headers, payload?: string) {
    const contentType: Headers = payload === undefined ? {} : { 'content-type': 'application/json' };
    const { status, headers: answered, body } = await sendRaw(method, url, { ...contentType, ...headers }, payload);
    if (status < 200 || status >= 300) {
      throw new OutboundError(`${url} answered HTTP ${status}`, { status, publicReason: 'it answered with an error' });
    }
    try {
      return { status, body: JSON.parse(body.toString('utf8')), maxAgeSeconds: maxAgeOf(answered['cache-control']) };
    } catch {
      throw new OutboundError(`${url} did not answer JSON`, { status, publicReason: 'it did not answer JSON' });
    }
  }

  /** The WHATWG fetch that openid-client asks for (its customFetch), on these same terms. */
  const fetchLike: FetchLike = async (url, { method, headers, body }) => {
    if (method !== 'GET' && method !== 'POST') throw new OutboundError(`${method} is not used`);
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof URLSearchParams)) {
      throw new OutboundError('only text bodies are sent');
    }
    const answer = await sendRaw(
      method,
      url,
      headers ?? {},
      body === undefined || body === null ? undefined : String(body),
    );
    const answerHeaders = new globalThis.Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      for (const item of [value ?? []].flat()) answerHeaders.append(name, item);
    }
    return new Response(answer.status === 204 ? null : answer.body, { status: answer.status, headers: answerHeaders });
  };

  return {
    getJson: (url, headers = {}) => sendJson('GET', url, headers),
    postJson: (url, body, headers = {}) => sendJson('POST', url, headers, JSON.stringify(body)),
    fetch: fetchLike,
    close: () => {
      agent.destroy();
      tunnelAgent?.destroy();
    },
  };
}

function toOutboundError(url: string, error: Error & { code?: string }): OutboundError {
  if (error instanceof OutboundError) return error;
  // Neither says where the proxy is: its address is the operator's business.
  if (error instanceof ProxyError && !error.timedOut) {
    return new OutboundError(`${url}: ${error.message}`, { publicReason: error.publicReason, cause: error });
  }
  const timedOut = error instanceof ProxyError && error.timedOut;
  if (timedOut || error.name === 'AbortError' || error.name === 'TimeoutError' || error.code === 'ABORT_ERR') {
    return new OutboundError(`${url} did not answer in time`, {
      publicReason: 'it did not answer in time',
      cause: error,
    });
  }
  const reason = error.code ?? error.message;
  if (error.code !== undefined && TLS_VERIFICATION_CODES.has(error.code)) {
    return new OutboundError(`${url}: ${UNTRUSTED_CERTIFICATE}: ${reason}`, {
      publicReason: UNTRUSTED_CERTIFICATE,
      cause: error,
    });
  }
  return new OutboundError(`${url} could not be reached (${reason})`, {
    publicReason: 'it could not be reached',
    cause: error,
  });
}

/** `Cache-Control: max-age` in seconds (RFC 9111 §5.2.2.1); undefined when absent or `no-store`/`no-cache`. */
function maxAgeOf(header: string | undefined): number | undefined {
  if (header === undefined || /(?:^|,)\s*no-(?:store|cache)\b/i.test(header))
    return header === undefined ? undefined : 0;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(header);
  return match ? Number(match[1]) : undefined;
}
