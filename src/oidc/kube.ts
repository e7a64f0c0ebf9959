import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { IdTokenRejected, type IdTokenVerifier } from '../domain/exchange.js';
import { isJsonObject } from '../domain/problems.js';
import { GatewayError } from '../errors.js';
import { OutboundError, type HttpsJsonClient } from './https-client.js';

export interface KubeSettings {
  /** KUBE_SA_TOKEN_FILE: the gateway's own projected service-account token. */
  readonly tokenFile: string;
  /** KUBE_API_URL */
  readonly apiUrl: string;
}

/** The gateway's own service-account token, read on each use: the kubelet rotates it. */
export function readOwnServiceAccountToken(tokenFile: string): string | undefined {
  try {
    const token = readFileSync(tokenFile, 'utf8').trim();
    return token === '' ? undefined : token;
  } catch {
    return undefined;
  }
}

/**
 * The `iss` of the gateway's own service-account token, which an empty
 * KUBE_SERVICE_ACCOUNT issuer stands for (docs/reference.md §3.3). Undefined outside a cluster.
 */
export function readOwnServiceAccountIssuer(tokenFile: string): string | undefined {
  const token = readOwnServiceAccountToken(tokenFile);
  try {
    const issuer = token === undefined ? undefined : decodeJwt(token).iss;
    return typeof issuer === 'string' && issuer !== '' ? issuer : undefined;
  } catch {
    return undefined;
  }
}

const hostOf = (url: string): string | undefined => (URL.canParse(url) ? new URL(url).host : undefined);

/**
 * The hosts of the API server and of the gateway's own token issuer, which
 * are exempt from the private-network refusal (docs/reference.md §3.3: in-cluster
 * addresses are private by nature).
 */
export function isClusterHostname(hostname: string, settings: KubeSettings): boolean {
  const ownIssuer = readOwnServiceAccountIssuer(settings.tokenFile);
  return [settings.apiUrl, ownIssuer].some(
    (url) => url !== undefined && URL.canParse(url) && new URL(url).hostname === hostname,
  );
}

/**
 * The hosts that may see the gateway's credential (docs/reference.md §3.3): the API server
 * and the issuer of the gateway's own token. Nobody else, ever.
 */
function credentialFor(url: string, settings: KubeSettings): string | undefined {
  const host = hostOf(url);
  const ownIssuer = readOwnServiceAccountIssuer(settings.tokenFile);
  const trusted = [hostOf(settings.apiUrl), ownIssuer === undefined ? undefined : hostOf(ownIssuer)];
  if (host === undefined || !trusted.includes(host)) return undefined;
  return readOwnServiceAccountToken(settings.tokenFile);
}

/**
 * Discovery and JWKS for cluster issuers (docs/reference.md §3.3): first without
 * credentials, then, on a 4xx/5xx answer, once more with the gateway's own
 * service-account token, re-read for that retry, if the host may see it.
 */
export function createKubeIssuerClient(http: HttpsJsonClient, settings: KubeSettings): HttpsJsonClient {
  return {
    async getJson(url, headers = {}) {
      try {
        return await http.getJson(url, headers);
      } catch (error) {
        if (!(error instanceof OutboundError) || (error.status ?? 0) < 400) throw error;
        const token = credentialFor(url, settings);
        if (token === undefined) throw error;
        return http.getJson(url, { ...headers, authorization: `Bearer ${token}` });
      }
    },
    postJson: (url, body, headers) => http.postJson(url, body, headers),
    close: () => http.close(),
  };
}

const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const MAX_REASON_LENGTH = 200;

/**
 * Asks the cluster whether a token is still good (KUBE_TOKEN_REVIEW, docs/reference.md
 * §3.3): a token whose bound pod or secret is gone is refused. An API server
 * that cannot be asked is a 503, never a pass.
 */
export function createTokenReviewer(http: HttpsJsonClient, settings: KubeSettings) {
  const url = `${settings.apiUrl.replace(/\/$/, '')}${TOKEN_REVIEW_PATH}`;
  return async function reviewToken(token: string, audience: string): Promise<void> {
    const credential = readOwnServiceAccountToken(settings.tokenFile);
    if (credential === undefined) {
      throw new GatewayError('UNAVAILABLE', 'TokenReview is enabled but the gateway has no service-account token');
    }
    let body: unknown;
    try {
      ({ body } = await http.postJson(
        url,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(audience === '' ? {} : { audiences: [audience] }) },
        },
        { authorization: `Bearer ${credential}` },
      ));
    } catch (error) {
      // The API server's address stays in the log (with the cause); the caller learns only what went wrong.
      const reason = error instanceof OutboundError ? error.publicReason : 'it could not be asked';
      throw new GatewayError('UNAVAILABLE', `TokenReview failed: ${reason}`, { cause: error });
    }
    const status = isJsonObject(body) && isJsonObject(body.status) ? body.status : {};
    if (status.authenticated !== true) {
      const reason = typeof status.error === 'string' && status.error !== '' ? status.error : 'not authenticated';
      throw new IdTokenRejected(`the cluster refused it (${reason.slice(0, MAX_REASON_LENGTH)})`, 'tokenReview');
    }
    if (audience !== '' && !(Array.isArray(status.audiences) && status.audiences.includes(audience))) {
      throw new IdTokenRejected('audience mismatch', 'tokenReview');
    }
  };
}

/** Verification plus TokenReview for KUBE_SERVICE_ACCOUNT configs. */
export function withTokenReview(
  verifier: IdTokenVerifier,
  reviewToken: (token: string, audience: string) => Promise<void>,
): IdTokenVerifier {
  return {
    async verify(idToken, config) {
      const payload = await verifier.verify(idToken, config);
      if (config.type === 'KUBE_SERVICE_ACCOUNT') await reviewToken(idToken, config.audience);
      return payload;
    },
  };
}
