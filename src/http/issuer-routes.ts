import { Router } from 'express';
import type { IssuerHealth } from '../oidc/issuer-health.js';
import type { AdminGuard } from './auth.js';

/** `GET /v1/issuers` (Access READ): the issuer health page's data (docs/reference.md §6.6), as this replica saw it. */
export function createIssuerRoutes(issuerHealth: () => IssuerHealth[], guard: AdminGuard): Router {
  return Router().get('/v1/issuers', ...guard.read, (_req, res) => {
    res.json({ issuers: issuerHealth() });
  });
}
