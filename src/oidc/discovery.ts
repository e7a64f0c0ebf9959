import { isJsonObject } from '../domain/problems.js';
import { OutboundError, type HttpsJsonClient } from './https-client.js';

/** The parts of an OpenID Provider's metadata the gateway relies on. */
export interface IssuerMetadata {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly idTokenSigningAlgValuesSupported: readonly string[] | undefined;
}

/**
 * OpenID Connect Discovery 1.0 §4: the document lives at the issuer with any
 * terminating `/` removed, plus `/.well-known/openid-configuration`.
 */
export const discoveryUrl = (issuer: string): string =>
  `${issuer.endsWith('/') ? issuer.slice(0, -1) : issuer}/.well-known/openid-configuration`;

/**
 * Fetches and checks an issuer's discovery document (docs/reference.md §3.2): its `issuer`
 * must be the configured one exactly (Discovery §4.3) and its `jwks_uri` https.
 *
 * @throws OutboundError with the reason
 */
export async function discoverIssuer(
  http: HttpsJsonClient,
  issuer: string,
  headers?: Readonly<Record<string, string>>,
): Promise<IssuerMetadata> {
  const { body } = await http.getJson(discoveryUrl(issuer), headers);
  if (!isJsonObject(body)) throw new OutboundError('the discovery document is not a JSON object');
  if (body.issuer !== issuer) {
    throw new OutboundError(
      `the discovery document names issuer ${JSON.stringify(body.issuer)}, not ${JSON.stringify(issuer)}`,
    );
  }
  const jwksUri = body.jwks_uri;
  if (typeof jwksUri !== 'string' || !jwksUri.startsWith('https://') || !URL.canParse(jwksUri)) {
    throw new OutboundError('the discovery document has no https jwks_uri');
  }
  const algs = body.id_token_signing_alg_values_supported;
  return {
    issuer,
    jwksUri,
    idTokenSigningAlgValuesSupported: Array.isArray(algs) ? algs.filter((alg) => typeof alg === 'string') : undefined,
  };
}
