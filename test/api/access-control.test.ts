import { describe, expect, it } from '@jest/globals';
import express from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { BUILT_IN_ROLES } from '../../src/domain/roles.js';
import { createAdminGuard, type Authenticate, type Principal } from '../../src/http/auth.js';
import { createErrorHandler } from '../../src/http/error-handler.js';
import { createSessionCookies } from '../../src/http/session-cookie.js';

const principal = (roleName: string): Principal => ({
  userId: 'ci-bot',
  friendlyName: 'ci-bot',
  roles: BUILT_IN_ROLES.filter((role) => role.name === roleName),
  authProvider: { id: 'config', name: 'config', type: 'm2m' },
  attributes: {},
});

/** An app guarded the way the admin routes are, with identities chosen by the test. */
function guardedApp(who: Principal | undefined) {
  const authenticate: Authenticate = {
    header: async () => who,
    password: async () => who,
    token: async () => who,
  };
  const guard = createAdminGuard(authenticate, createSessionCookies('http://localhost:8080'));
  return express()
    .get('/read', ...guard.read, (_req, res) => void res.json({}))
    .post('/write', ...guard.write, (_req, res) => void res.json({}))
    .use(createErrorHandler(pino({ level: 'silent' })));
}

describe('Access enforcement on the admin API', () => {
  it('lets Admin read and write', async () => {
    await request(guardedApp(principal('Admin')))
      .get('/read')
      .expect(200);
    await request(guardedApp(principal('Admin')))
      .post('/write')
      .expect(200);
  });

  it.each(['Analyst', 'None', 'Continuous Integration'])('answers 403 to %s, which lacks Access', async (role) => {
    const app = guardedApp(principal(role));
    const denied = (level: string) => ({
      code: 7,
      message: `this needs ${level} to the Access resource`,
      details: [],
      error: `this needs ${level} to the Access resource`,
    });
    await request(app).get('/read').expect(403).expect(denied('READ_ACCESS'));
    await request(app).post('/write').expect(403).expect(denied('READ_WRITE_ACCESS'));
  });

  it('answers 401 when there is no identity', async () => {
    const response = await request(guardedApp(undefined)).get('/read').expect(401);
    expect(response.body.code).toBe(16);
  });
});
