import { Router } from 'express';
import type { AuditContext } from '../domain/audit.js';
import type { PublishedSigningKey } from '../keys/key-rotation.js';
import { auditContext, type AdminGuard } from './auth.js';

/** What the key routes need: the published keys, and a rotation that is audited with its actor. */
export interface SigningKeyRotation {
  list(): Promise<PublishedSigningKey[]>;
  /** @returns the kid of the new signing key */
  rotate(context: AuditContext): Promise<string>;
}

/**
 * `POST /v1/keys/rotate` (Access READ_WRITE, docs/reference.md §4): a new signing key at
 * once; the old one stays published and accepted until its last token has
 * expired. Any request body is ignored. `GET /v1/keys` (Access READ) lists
 * the published keys for the console (§6.6).
 */
export function createKeyRoutes(keys: SigningKeyRotation, guard: AdminGuard): Router {
  return Router()
    .get('/v1/keys', ...guard.read, async (_req, res) => {
      res.json({ keys: await keys.list() });
    })
    .post('/v1/keys/rotate', ...guard.write, async (req, res) => {
      res.json({ kid: await keys.rotate(auditContext(req, res)) });
    });
}
