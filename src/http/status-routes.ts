import { Router } from 'express';
import { GatewayError } from '../errors.js';
import { principalOf, type AdminGuard } from './auth.js';

/** `/v1/auth/status` in StackRox's AuthStatus shape, and the probes. */
export function createStatusRoutes(guard: AdminGuard, checkReadiness: () => Promise<void>): Router {
  return Router()
    .get('/v1/auth/status', guard.identity, (_req, res) => {
      const principal = principalOf(res);
      res.json({
        userId: principal.userId,
        ...(principal.expires ? { expires: principal.expires.toISOString() } : {}),
        authProvider: principal.authProvider,
        userInfo: {
          username: principal.userId,
          friendlyName: principal.friendlyName,
          roles: principal.roles.map((role) => ({ name: role.name })),
        },
        userAttributes: Object.entries(principal.attributes).map(([key, values]) => ({ key, values })),
      });
    })
    .get('/healthz', (_req, res) => {
      res.json({ status: 'ok' });
    })
    .get('/readyz', async (_req, res) => {
      try {
        await checkReadiness();
      } catch (error) {
        throw new GatewayError('UNAVAILABLE', 'not ready', { cause: error });
      }
      res.json({ status: 'ready' });
    });
}
