import https from 'node:https';
import tls from 'node:tls';

export interface OutboundLimits {
  /** SPEC §3.2: 5 s for discovery, JWKS and TokenReview. */
  readonly timeoutMs: number;
  /** SPEC §3.2: responses ≤ 1 MiB. */
  readonly maxBytes: number;
}

export const DEFAULT_OUTBOUND_LIMITS: OutboundLimits = { timeoutMs: 5000, maxBytes: 1024 * 1024 };

/** Why an outbound call failed, in words safe to show an admin. */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';

  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface JsonResponse {
  readonly status: number;
  readonly body: unknown;
}

export type Headers = Readonly<Record<string, string>>;

export interface HttpsJsonClient {
  /**
   * GETs a JSON document. Redirects are not followed; a non-2xx status, an
   * oversized or non-JSON body and a timeout are OutboundErrors.
   */
  getJson(url: string, headers?: Headers): Promise<JsonResponse>;
  /** POSTs a JSON body and reads a JSON answer, on the same terms as getJson. */
  postJson(url: string, body: unknown, headers?: Headers): Promise<JsonResponse>;
}

/**
 * The one way the gateway talks to issuers and the cluster: https only, extra
 * CAs on top of the system roots (ISSUER_CA_FILE), bounded in time and size.
 */
export function createHttpsJsonClient(
  extraCaPem: readonly string[],
  limits = DEFAULT_OUTBOUND_LIMITS,
): HttpsJsonClient {
  const agent = new https.Agent({
    keepAlive: true,
    ca: extraCaPem.length > 0 ? [...tls.rootCertificates, ...extraCaPem] : undefined,
  });

  function send(method: 'GET' | 'POST', url: string, headers: Headers, payload?: string): Promise<JsonResponse> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(new OutboundError(`${JSON.stringify(url)} is not a URL`));
    }
    if (target.protocol !== 'https:') return Promise.reject(new OutboundError(`${url} is not https`));

    return new Promise<JsonResponse>((resolve, reject) => {
      const request = https.request(
        target,
        {
          method,
          agent,
          headers: {
            accept: 'application/json',
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            ...headers,
          },
          signal: AbortSignal.timeout(limits.timeoutMs),
        },
        (response) => {
          const status = response.statusCode ?? 0;
          const fail = (message: string) => {
            response.destroy();
            reject(new OutboundError(message, status));
          };
          if (status >= 300 && status < 400) return fail(`${url} answered ${status}; redirects are not followed`);
          if (Number(response.headers['content-length'] ?? 0) > limits.maxBytes) {
            return fail(`${url} answered more than ${limits.maxBytes} bytes`);
          }
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > limits.maxBytes) fail(`${url} answered more than ${limits.maxBytes} bytes`);
            else chunks.push(chunk);
          });
          response.on('error', (error) => reject(toOutboundError(url, error)));
          response.on('end', () => {
            if (status < 200 || status >= 300) {
              return reject(new OutboundError(`${url} answered HTTP ${status}`, status));
            }
            try {
              resolve({ status, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
            } catch {
              reject(new OutboundError(`${url} did not answer JSON`, status));
            }
          });
        },
      );
      request.on('error', (error) => reject(toOutboundError(url, error)));
      request.end(payload);
    });
  }

  return {
    getJson: (url, headers = {}) => send('GET', url, headers),
    postJson: (url, body, headers = {}) => send('POST', url, headers, JSON.stringify(body)),
  };
}

function toOutboundError(url: string, error: Error & { code?: string }): OutboundError {
  if (error instanceof OutboundError) return error;
  if (error.name === 'AbortError' || error.name === 'TimeoutError' || error.code === 'ABORT_ERR') {
    return new OutboundError(`${url} did not answer in time`, undefined, { cause: error });
  }
  const reason = error.code ?? error.message;
  return new OutboundError(`${url} could not be reached (${reason})`, undefined, { cause: error });
}
