import { Router } from 'express';
import type { M2mConfig } from '../domain/m2m-config.js';
import type { M2mConfigService } from '../domain/m2m-config-service.js';
import { isJsonObject } from '../domain/problems.js';
import { auditContext, type AdminGuard } from './auth.js';
import { ADMIN_BODY_LIMIT_BYTES } from './limits.js';
import { jsonBody, pathParam, withJsonFieldNames } from './request-body.js';

/** Every field, always (SPEC §1). */
export const configToJson = (config: M2mConfig) => ({
  id: config.id,
  type: config.type,
  tokenExpirationDuration: config.tokenExpirationDuration,
  mappings: config.mappings.map(({ key, valueExpression, role }) => ({ key, valueExpression, role })),
  issuer: config.issuer,
  audience: config.audience,
});

/** The `config` of an Add/Update request (StackRox's `body: "*"` messages). */
const configInput = (body: unknown): unknown => {
  const request = withJsonFieldNames(body);
  return isJsonObject(request) ? request.config : undefined;
};

export function createM2mRoutes(configs: M2mConfigService, guard: AdminGuard): Router {
  const { read, write } = guard;
  const body = jsonBody(ADMIN_BODY_LIMIT_BYTES);

  return Router()
    .get('/v1/auth/m2m', ...read, async (_req, res) => {
      res.json({ configs: (await configs.list()).map(configToJson) });
    })
    .get('/v1/auth/m2m/:id', ...read, async (req, res) => {
      res.json({ config: configToJson(await configs.get(pathParam(req, 'id'))) });
    })
    .post('/v1/auth/m2m', ...write, ...body, async (req, res) => {
      res.json({ config: configToJson(await configs.add(configInput(req.body), auditContext(req, res))) });
    })
    .put('/v1/auth/m2m/:id', ...write, ...body, async (req, res) => {
      await configs.update(pathParam(req, 'id'), configInput(req.body), auditContext(req, res));
      res.json({});
    })
    .delete('/v1/auth/m2m/:id', ...write, async (req, res) => {
      await configs.remove(pathParam(req, 'id'), auditContext(req, res));
      res.json({});
    });
}
