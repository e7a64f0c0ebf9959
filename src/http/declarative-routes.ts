import { Router } from 'express';
import type { DeclarativeStatus } from '../declarative/declarative-configs.js';
import type { AdminGuard } from './auth.js';

/** What the status says when DECLARATIVE_CONFIG_DIR is not set. */
const NOT_SET: DeclarativeStatus = { directory: null, lastApplied: null, documents: 0, errors: [] };

/** `GET /v1/declarative/status` (Access READ): what this replica last made of DECLARATIVE_CONFIG_DIR (docs/reference.md §6.5). */
export function createDeclarativeRoutes(status: (() => DeclarativeStatus) | undefined, guard: AdminGuard): Router {
  return Router().get('/v1/declarative/status', ...guard.read, (_req, res) => {
    res.json(status?.() ?? NOT_SET);
  });
}
