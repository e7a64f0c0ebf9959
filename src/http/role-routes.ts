import { Router } from 'express';
import type { RoleService } from '../domain/role-service.js';
import type { Role } from '../domain/roles.js';
import { auditContext, type AdminGuard } from './auth.js';
import { ADMIN_BODY_LIMIT_BYTES } from './limits.js';
import { jsonBody, pathParam } from './request-body.js';

export const roleToJson = (role: Role) => ({
  name: role.name,
  description: role.description,
  permissions: role.permissions,
});

export function createRoleRoutes(roles: RoleService, guard: AdminGuard): Router {
  const { read, write } = guard;
  const body = jsonBody(ADMIN_BODY_LIMIT_BYTES);

  return Router()
    .get('/v1/roles', ...read, async (_req, res) => {
      res.json({ roles: (await roles.list()).map(roleToJson) });
    })
    .get('/v1/roles/:name', ...read, async (req, res) => {
      res.json(roleToJson(await roles.get(pathParam(req, 'name'))));
    })
    .post('/v1/roles/:name', ...write, ...body, async (req, res) => {
      await roles.create(pathParam(req, 'name'), req.body, auditContext(req, res));
      res.json({});
    })
    .put('/v1/roles/:name', ...write, ...body, async (req, res) => {
      await roles.update(pathParam(req, 'name'), req.body, auditContext(req, res));
      res.json({});
    })
    .delete('/v1/roles/:name', ...write, async (req, res) => {
      await roles.remove(pathParam(req, 'name'), auditContext(req, res));
      res.json({});
    });
}
