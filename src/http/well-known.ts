import { Router } from 'express';
import type { JWK } from 'jose';

export interface IssuerPublication {
  readonly issuer: string;
  readonly signingAlgs: () => readonly string[];
  readonly jwks: () => { keys: JWK[] };
}

/** The gateway as an issuer: metadata and the keys downstream services verify with (docs/reference.md §2). */
export function createWellKnownRoutes(publication: IssuerPublication): Router {
  const base = publication.issuer.replace(/\/$/, '');
  return Router()
    .get('/.well-known/openid-configuration', (_req, res) => {
      res.set('Cache-Control', 'public, max-age=300').json({
        issuer: publication.issuer,
        jwks_uri: `${base}/.well-known/jwks.json`,
        token_endpoint: `${base}/oauth2/token`,
        grant_types_supported: ['urn:ietf:params:oauth:grant-type:token-exchange'],
        id_token_signing_alg_values_supported: publication.signingAlgs(),
      });
    })
    .get('/.well-known/jwks.json', (_req, res) => {
      // Short, so that verifiers pick up a rotated key soon.
      res.set('Cache-Control', 'public, max-age=60').json(publication.jwks());
    });
}
