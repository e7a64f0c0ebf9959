import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let issuer: FakeIssuer;

beforeAll(async () => {
  gateway = await startTestGateway();
  issuer = await startFakeIssuer(gateway.ca);
});

afterAll(async () => {
  await issuer.close();
  await gateway.close();
  await gateway.database.drop();
});

const api = () => request(gateway.app);

describe('/v1/roles', () => {
  it('lists the built-in roles on first start', async () => {
    const { body } = await api().get('/v1/roles').set('Authorization', ADMIN_AUTH).expect(200);
    expect(body.roles.map((r: { name: string }) => r.name)).toEqual([
      'Admin',
      'Analyst',
      'Continuous Integration',
      'None',
    ]);
    await api()
      .get('/v1/roles/Continuous%20Integration')
      .set('Authorization', ADMIN_AUTH)
      .expect(200)
      .expect({
        name: 'Continuous Integration',
        description: 'For automation: use it for CI pipelines that check images and policies',
        permissions: { Detection: 'READ_ACCESS', Image: 'READ_WRITE_ACCESS' },
      });
  });

  it('creates, reads, updates and deletes a role', async () => {
    const role = { name: 'roxctl', description: 'CI scans', permissions: { Image: 'READ_ACCESS' } };
    await api().post('/v1/roles/roxctl').set('Authorization', ADMIN_AUTH).send(role).expect(200).expect({});
    await api().get('/v1/roles/roxctl').set('Authorization', ADMIN_AUTH).expect(200).expect(role);
    await api()
      .post('/v1/roles/roxctl')
      .set('Authorization', ADMIN_AUTH)
      .send(role)
      .expect(409)
      .expect(errorBody(6, 'role "roxctl" already exists'));

    const updated = { ...role, permissions: { Image: 'READ_WRITE_ACCESS', Access: 'READ_ACCESS' } };
    await api().put('/v1/roles/roxctl').set('Authorization', ADMIN_AUTH).send(updated).expect(200).expect({});
    await api().get('/v1/roles/roxctl').set('Authorization', ADMIN_AUTH).expect(200).expect(updated);

    await api().delete('/v1/roles/roxctl').set('Authorization', ADMIN_AUTH).expect(200).expect({});
    await api()
      .get('/v1/roles/roxctl')
      .set('Authorization', ADMIN_AUTH)
      .expect(404)
      .expect(errorBody(5, 'role "roxctl" not found'));
    await api().delete('/v1/roles/roxctl').set('Authorization', ADMIN_AUTH).expect(404);
  });

  it('creates a role through PUT (upsert)', async () => {
    await api()
      .put('/v1/roles/auditor')
      .set('Authorization', ADMIN_AUTH)
      .send({ permissions: { Alert: 'READ_ACCESS' } })
      .expect(200);
    await api()
      .get('/v1/roles/auditor')
      .set('Authorization', ADMIN_AUTH)
      .expect({ name: 'auditor', description: '', permissions: { Alert: 'READ_ACCESS' } });
  });

  it('reports every problem of a role at once', async () => {
    await api()
      .post('/v1/roles/x')
      .set('Authorization', ADMIN_AUTH)
      .send({ name: 'y', permissions: { Nope: 'READ_ACCESS', Image: 'ALL' } })
      .expect(400)
      .expect(
        errorBody(
          3,
          'invalid role: name "y" in the body differs from "x" in the path; permissions: unknown resource "Nope"; ' +
            'permissions.Image: access must be one of NO_ACCESS, READ_ACCESS, READ_WRITE_ACCESS',
        ),
      );
    await api().get('/v1/roles/x').set('Authorization', ADMIN_AUTH).expect(404);
  });

  it.each(['Admin', 'Analyst', 'Continuous Integration', 'None'])(
    'refuses to change or delete the built-in %s',
    async (name) => {
      const path = `/v1/roles/${encodeURIComponent(name)}`;
      const message = `role "${name}" is built in and cannot be changed or deleted`;
      await api().delete(path).set('Authorization', ADMIN_AUTH).expect(400).expect(errorBody(9, message));
      await api()
        .put(path)
        .set('Authorization', ADMIN_AUTH)
        .send({ permissions: {} })
        .expect(400)
        .expect(errorBody(9, message));
      await api().post(path).set('Authorization', ADMIN_AUTH).send({}).expect(409);
    },
  );

  it('refuses to delete a role that a mapping uses, and allows it once unused', async () => {
    await api()
      .post('/v1/roles/deployer')
      .set('Authorization', ADMIN_AUTH)
      .send({ permissions: { Deployment: 'READ_WRITE_ACCESS' } })
      .expect(200);
    const { body } = await api()
      .post('/v1/auth/m2m')
      .set('Authorization', ADMIN_AUTH)
      .send({
        config: {
          type: 'GENERIC',
          tokenExpirationDuration: '15m',
          issuer: issuer.issuer,
          mappings: [{ key: 'sub', valueExpression: 'deploy-bot', role: 'deployer' }],
        },
      })
      .expect(200);
    await api()
      .delete('/v1/roles/deployer')
      .set('Authorization', ADMIN_AUTH)
      .expect(400)
      .expect(errorBody(9, `role "deployer" is used by the mappings of machine-to-machine configs ${body.config.id}`));
    await api().get('/v1/roles/deployer').set('Authorization', ADMIN_AUTH).expect(200);

    await api().delete(`/v1/auth/m2m/${body.config.id}`).set('Authorization', ADMIN_AUTH).expect(200);
    await api().delete('/v1/roles/deployer').set('Authorization', ADMIN_AUTH).expect(200).expect({});
  });

  it('needs credentials', async () => {
    await api().get('/v1/roles').expect(401);
    await api().post('/v1/roles/x').send({}).expect(401);
  });
});
