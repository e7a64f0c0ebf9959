import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Express } from 'express';
import request from 'supertest';
import { parse } from 'yaml';
import { startFakeIssuer } from '../fixtures/fake-issuer.js';
import { ADMIN_AUTH, ADMIN_PASSWORD, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- walking an OpenAPI document */
const document = parse(readFileSync(new URL('../../docs/openapi.yaml', import.meta.url), 'utf8')) as any;
const METHODS = ['get', 'post', 'put', 'delete', 'patch'];
let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});
afterAll(async () => {
  await gateway.close();
  await gateway.database.drop();
});

/** The schema of an operation's JSON answer with this status. */
const answerSchema = (path: string, method: string, status: string): unknown =>
  resolve(document.paths[path][method].responses[status]).content['application/json'].schema;

/** Every `METHOD /path` the Express app answers, with `:param` written `{param}`. */
function registeredRoutes(app: Express): string[] {
  const routes: string[] = [];
  const walk = (stack: any[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) {
          routes.push(`${method.toUpperCase()} ${String(layer.route.path).replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as any).router.stack);
  return [...new Set(routes)].sort();
}

const documentedRoutes = (): string[] =>
  Object.entries(document.paths)
    .flatMap(([path, item]: [string, any]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
const validatorFor = (schema: unknown) => ajv.compile({ ...(schema as object), components: document.components });
const resolve = (node: any): any =>
  node?.$ref
    ? resolve(
        node.$ref
          .split('/')
          .slice(1)
          .reduce((at: any, key: string) => at[key], document),
      )
    : node;

describe('docs/openapi.yaml', () => {
  it('is served at /openapi.json', async () => {
    await request(gateway.app).get('/openapi.json').expect(200).expect(document);
  });

  it('documents every route the app registers, and no other', () => {
    expect(documentedRoutes()).toEqual(registeredRoutes(gateway.app));
  });

  it('has examples that validate against their schemas', () => {
    let checked = 0;
    for (const item of Object.values(document.paths) as any[]) {
      for (const method of METHODS.filter((m) => item[m])) {
        const operation = item[method];
        const contents = [
          resolve(operation.requestBody)?.content,
          ...Object.values(operation.responses ?? {}).map((response) => resolve(response)?.content),
        ];
        for (const content of contents.filter(Boolean)) {
          for (const media of Object.values(content) as any[]) {
            const validate = validatorFor(media.schema);
            for (const [name, example] of Object.entries(media.examples ?? {}) as [string, any][]) {
              const valid = validate(example.value);
              expect({ name, valid, errors: validate.errors }).toEqual({ name, valid: true, errors: null });
              checked += 1;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it('describes what the gateway really answers', async () => {
    const roles = await request(gateway.app).get('/v1/roles').set('Authorization', ADMIN_AUTH).expect(200);
    expect(
      validatorFor(document.paths['/v1/roles'].get.responses['200'].content['application/json'].schema)(roles.body),
    ).toBe(true);
    const status = await request(gateway.app).get('/v1/auth/status').set('Authorization', ADMIN_AUTH).expect(200);
    expect(validatorFor(document.components.schemas.AuthStatus)(status.body)).toBe(true);
    const refused = await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken: 'x' }).expect(400);
    expect(validatorFor(document.components.schemas.Error)(refused.body)).toBe(true);
    const metadata = await request(gateway.app).get('/.well-known/openid-configuration').expect(200);
    expect(
      validatorFor(
        document.paths['/.well-known/openid-configuration'].get.responses['200'].content['application/json'].schema,
      )(metadata.body),
    ).toBe(true);
  });

  it('describes what key rotation really answers, and its audit record', async () => {
    const rotated = await request(gateway.app).post('/v1/keys/rotate').set('Authorization', ADMIN_AUTH).expect(200);
    const validate = validatorFor(answerSchema('/v1/keys/rotate', 'post', '200'));
    expect({ valid: validate(rotated.body), errors: validate.errors }).toEqual({ valid: true, errors: null });
    const audit = await request(gateway.app)
      .get('/v1/audit?outcome=applied&limit=1')
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    expect(audit.body.events[0]).toMatchObject({ action: 'keys.rotate', details: { kid: rotated.body.kid } });
    expect(validatorFor(answerSchema('/v1/audit', 'get', '200'))(audit.body)).toBe(true);
  });

  it("describes what the console's endpoints really answer", async () => {
    const expectValid = (path: string, method: string, body: unknown) => {
      const validate = validatorFor(answerSchema(path, method, '200'));
      expect({ path, valid: validate(body), errors: validate.errors }).toEqual({ path, valid: true, errors: null });
    };
    for (const path of ['/v1/keys', '/v1/issuers']) {
      expectValid(
        path,
        'get',
        (await request(gateway.app).get(path).set('Authorization', ADMIN_AUTH).expect(200)).body,
      );
    }
    expectValid('/ui/session', 'get', (await request(gateway.app).get('/ui/session').expect(200)).body);
    const signedIn = await request(gateway.app).post('/ui/session').send({ password: ADMIN_PASSWORD }).expect(200);
    expectValid('/ui/session', 'post', signedIn.body);
  });

  it('describes what the config, explain, lint and audit endpoints really answer', async () => {
    const issuer = await startFakeIssuer(gateway.ca);
    const admin = (req: request.Test) => req.set('Authorization', ADMIN_AUTH);
    const expectValid = (schema: unknown, body: unknown) => {
      const validate = validatorFor(schema);
      const valid = validate(body);
      expect({ valid, errors: validate.errors }).toEqual({ valid: true, errors: null });
    };
    try {
      const config = {
        type: 'GENERIC',
        issuer: issuer.issuer,
        audience: 'https://github.com/acme',
        tokenExpirationDuration: '15m',
        conditions: [{ key: 'repository_owner_id', valueExpression: '12345678' }],
        mappings: [{ key: 'repository_id', valueExpression: '555555555', role: 'Continuous Integration' }],
        maxTokenAge: '10m',
        singleUse: true,
        tests: [
          {
            name: 'acme/app',
            claims: { repository_owner_id: '12345678', repository_id: '555555555' },
            roles: ['Continuous Integration'],
          },
        ],
      };
      const added = await admin(request(gateway.app).post('/v1/auth/m2m')).send({ config }).expect(200);
      expectValid(answerSchema('/v1/auth/m2m', 'post', '200'), added.body);
      const { id } = added.body.config;
      expectValid(
        answerSchema('/v1/auth/m2m/{id}', 'get', '200'),
        (await admin(request(gateway.app).get(`/v1/auth/m2m/${id}`)).expect(200)).body,
      );
      expectValid(
        answerSchema('/v1/auth/m2m', 'get', '200'),
        (await admin(request(gateway.app).get('/v1/auth/m2m')).expect(200)).body,
      );
      const failing = await admin(request(gateway.app).put(`/v1/auth/m2m/${id}`))
        .send({ config: { ...config, conditions: [{ key: 'repository_owner_id', valueExpression: '1' }] } })
        .expect(400);
      expect(failing.body.code).toBe(9);
      expectValid(answerSchema('/v1/auth/m2m/{id}', 'put', '400'), failing.body);

      const explainSchema = answerSchema('/v1/auth/m2m/explain', 'post', '200');
      const claims = { sub: 'ci', repository_owner_id: '12345678', repository_id: '555555555' };
      const granted = await admin(request(gateway.app).post('/v1/auth/m2m/explain'))
        .send({ claims, configId: id })
        .expect(200);
      expect(granted.body.decision).toBe('GRANTED');
      expectValid(explainSchema, granted.body);
      const idToken = await issuer.sign({ ...claims, aud: 'https://github.com/acme', repository_owner_id: '999' });
      const refused = await admin(request(gateway.app).post('/v1/auth/m2m/explain')).send({ idToken }).expect(200);
      expect(refused.body.steps.at(-1)).toMatchObject({ name: 'conditions', ok: false });
      expectValid(explainSchema, refused.body);
      await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken }).expect(401);

      expectValid(
        answerSchema('/v1/auth/m2m/lint', 'post', '200'),
        (await admin(request(gateway.app).post('/v1/auth/m2m/lint')).send({ config: {} }).expect(200)).body,
      );
      const audit = await admin(request(gateway.app).get('/v1/audit')).expect(200);
      expect(audit.body.events.map((event: { action: string }) => event.action)).toEqual(
        expect.arrayContaining(['config.create', 'config.explain', 'exchange']),
      );
      expectValid(answerSchema('/v1/audit', 'get', '200'), audit.body);
      expectValid(
        answerSchema('/v1/audit', 'get', '400'),
        (await admin(request(gateway.app).get('/v1/audit?outcomes=refused')).expect(400)).body,
      );
    } finally {
      await issuer.close();
    }
  });
});
