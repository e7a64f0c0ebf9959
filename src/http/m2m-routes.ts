import { Router } from 'express';
import type { Explain, ExplainRequest } from '../domain/explain.js';
import { configFields, type M2mConfig } from '../domain/m2m-config.js';
import type { M2mConfigService } from '../domain/m2m-config-service.js';
import type { Origin } from '../domain/origin.js';
import { isJsonObject } from '../domain/problems.js';
import { invalidArgument } from '../errors.js';
import { auditContext, type AdminGuard } from './auth.js';
import { ADMIN_BODY_LIMIT_BYTES } from './limits.js';
import { jsonBody, pathParam, withJsonFieldNames } from './request-body.js';

/** Every field, always (docs/reference.md §1); `traits` as StackRox reports them, with the stored origin (§6.5). */
export const configToJson = (config: M2mConfig & { readonly origin?: Origin }) => ({
  ...configFields(config),
  traits: { mutabilityMode: 'ALLOW_MUTATE', visibility: 'VISIBLE', origin: config.origin ?? 'IMPERATIVE' },
});

/** The `config` of an Add/Update request (StackRox's `body: "*"` messages). */
const configInput = (body: unknown): unknown => {
  const request = withJsonFieldNames(body);
  return isJsonObject(request) ? request.config : undefined;
};

/** An audit event id as `GET /v1/audit` shows it: a decimal string of a positive int64. */
const AUDIT_EVENT_ID = /^[1-9]\d{0,18}$/;

/** `POST /v1/auth/m2m/explain`: exactly one of the four forms, checked here; the domain takes it typed. */
function explainRequest(body: unknown): ExplainRequest {
  const request = withJsonFieldNames(body);
  const { idToken, claims, configId, config, auditEventId } = isJsonObject(request) ? request : {};
  const given = [idToken, claims, auditEventId].filter((field) => field !== undefined).length;
  if (given !== 1) {
    throw invalidArgument('give one of idToken, claims with configId or config, or auditEventId');
  }
  if (idToken !== undefined) {
    if (typeof idToken !== 'string' || idToken === '') throw invalidArgument('idToken must be a non-empty string');
    return { idToken };
  }
  if (auditEventId !== undefined) {
    const id = String(auditEventId);
    if (!AUDIT_EVENT_ID.test(id) || BigInt(id) > 2n ** 63n - 1n) {
      throw invalidArgument('auditEventId must be the id of an audit event');
    }
    return { auditEventId: BigInt(id) };
  }
  if (!isJsonObject(claims)) throw invalidArgument('claims must be a JSON object');
  if ((configId === undefined) === (config === undefined)) {
    throw invalidArgument('claims go with either configId or config');
  }
  if (configId !== undefined) {
    if (typeof configId !== 'string') throw invalidArgument('configId must be a string');
    return { claims, configId };
  }
  return { claims, config };
}

export function createM2mRoutes(configs: M2mConfigService, explain: Explain, guard: AdminGuard): Router {
  const { read, write } = guard;
  const body = jsonBody(ADMIN_BODY_LIMIT_BYTES);

  return Router()
    .get('/v1/auth/m2m', ...read, async (_req, res) => {
      res.json({ configs: (await configs.list()).map(configToJson) });
    })
    .post('/v1/auth/m2m/explain', ...read, ...body, async (req, res) => {
      res.json(await explain(explainRequest(req.body), auditContext(req, res)));
    })
    .post('/v1/auth/m2m/lint', ...read, ...body, async (req, res) => {
      res.json(await configs.lint(configInput(req.body)));
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
