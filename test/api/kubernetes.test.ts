import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { startFakeIssuer } from '../fixtures/fake-issuer.js';
import { startFakeKubeApi, type FakeKubeApi } from '../fixtures/fake-kube-api.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { ADMIN_AUTH, errorBody, startTestGateway, type TestGateway } from '../fixtures/test-gateway.js';

const AUDIENCE = 'm2m-gateway';
let ca: TestCa;
let kube: FakeKubeApi;
let tokenFile: string;

const kubeConfig = (overrides: Record<string, unknown> = {}) => ({
  type: 'KUBE_SERVICE_ACCOUNT',
  tokenExpirationDuration: '10m',
  audience: AUDIENCE,
  mappings: [
    { key: 'kubernetes.io.namespace', valueExpression: 'ci', role: 'Continuous Integration' },
    { key: 'kubernetes.io.serviceaccount.name', valueExpression: 'deployer', role: 'Admin' },
  ],
  ...overrides,
});

function addConfig(gateway: TestGateway, config: Record<string, unknown>) {
  return request(gateway.app).post('/v1/auth/m2m').set('Authorization', ADMIN_AUTH).send({ config });
}

const exchange = (gateway: TestGateway, idToken: string) =>
  request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken });

/** A pod's projected token, as the kubelet requests it: audience, lifetime, bound to the pod. */
async function podToken(namespace: string, serviceAccount: string, pod: string, audience = AUDIENCE) {
  const { uid } = kube.addPod(namespace, pod);
  return kube.requestToken(namespace, serviceAccount, {
    audiences: [audience],
    expirationSeconds: 600,
    boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod, uid },
  });
}

beforeAll(async () => {
  ca = await createTestCa();
  kube = await startFakeKubeApi(ca);
  kube.addServiceAccount('ci', 'builder');
  kube.addServiceAccount('prod', 'deployer');
  tokenFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-sa-')), 'token');
  await kube.writeGatewayToken(tokenFile);
});

afterAll(() => kube.close());

describe('KUBE_SERVICE_ACCOUNT', () => {
  let gateway: TestGateway;
  let configId: string;

  beforeAll(async () => {
    gateway = await startTestGateway({ KUBE_SA_TOKEN_FILE: tokenFile, KUBE_API_URL: kube.url }, { ca });
  });
  afterAll(async () => {
    await gateway.close();
    await gateway.database.drop();
  });
  beforeEach(() => {
    kube.requireAuthForDiscovery = true;
  });

  it("takes an empty issuer from the gateway's own token, and authenticates discovery only after a refusal", async () => {
    kube.requests.length = 0;
    const response = await addConfig(gateway, kubeConfig()).expect(200);
    configId = response.body.config.id;
    expect(response.body.config.issuer).toBe(kube.issuer);

    const discovery = kube.requests.filter((r) => r.path === '/.well-known/openid-configuration');
    const ownToken = readFileSync(tokenFile, 'utf8');
    expect(discovery.map((r) => r.authorization)).toEqual([undefined, `Bearer ${ownToken}`]);
  });

  it('exchanges a pod-bound TokenRequest token; namespace and service account are mappable', async () => {
    const idToken = await podToken('ci', 'builder', 'build-1');
    const { body } = await exchange(gateway, idToken).expect(200);
    const claims = decodeJwt(body.accessToken);
    const serviceAccountUid = (decodeJwt(idToken)['kubernetes.io'] as { serviceaccount: { uid: string } })
      .serviceaccount.uid;
    expect(claims.sub).toBe(`sso:${configId}:${serviceAccountUid}`);
    expect(claims.name).toBe('system:serviceaccount:ci:builder');
    expect(claims.roles).toEqual(['Continuous Integration']);
    expect((claims.external_user as { attributes: Record<string, string[]> }).attributes).toMatchObject({
      'kubernetes.io.namespace': ['ci'],
      'kubernetes.io.serviceaccount.name': ['builder'],
      'kubernetes.io.serviceaccount.uid': [serviceAccountUid],
      'kubernetes.io.pod.name': ['build-1'],
      aud: [AUDIENCE],
    });

    const deployer = await podToken('prod', 'deployer', 'deploy-1');
    expect(decodeJwt((await exchange(gateway, deployer).expect(200)).body.accessToken).roles).toEqual(['Admin']);
  });

  it('re-reads the rotated service-account token on every retry', async () => {
    const rotated = await kube.writeGatewayToken(tokenFile);
    kube.requests.length = 0;
    await request(gateway.app)
      .put(`/v1/auth/m2m/${configId}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: kubeConfig() })
      .expect(200);
    expect(kube.requests.filter((r) => r.authorization).map((r) => r.authorization)).toEqual([`Bearer ${rotated}`]);
  });

  it('refuses a token requested for another audience', async () => {
    const { body } = await exchange(
      gateway,
      await podToken('ci', 'builder', 'build-2', 'https://kubernetes.default.svc'),
    ).expect(401);
    expect(body.message).toMatch(
      /^ID token is invalid: audience mismatch: expected ".+", token has \["https:\/\/kubernetes.default.svc"\]$/,
    );
  });

  it('refuses a legacy secret-based token (no exp, issuer kubernetes/serviceaccount)', async () => {
    kube.addTokenSecret('ci', 'builder-token', 'builder');
    const legacy = await kube.readSecretToken('ci', 'builder-token');
    expect(decodeJwt(legacy).exp).toBeUndefined();
    await exchange(gateway, legacy)
      .expect(401)
      .expect(errorBody(16, 'issuer "kubernetes/serviceaccount" is not configured'));
  });

  it('never sends its credential to an issuer on another host', async () => {
    const elsewhere = await startFakeIssuer(ca);
    elsewhere.discovery = { status: 401 };
    try {
      const response = await addConfig(gateway, kubeConfig({ issuer: elsewhere.issuer })).expect(400);
      expect(response.body.code).toBe(9);
      expect(response.body.message).toContain('answered HTTP 401');
      expect(elsewhere.requests).toEqual(['/.well-known/openid-configuration']);
    } finally {
      await elsewhere.close();
    }
  });

  it('can fetch keys of a cluster whose discovery is public, without credentials', async () => {
    kube.requireAuthForDiscovery = false;
    const newConfigId = '7d1f2a0e-1111-4c5b-8f0e-3c1b2a7d6e01';
    await request(gateway.app).delete(`/v1/auth/m2m/${configId}`).set('Authorization', ADMIN_AUTH).expect(200);
    kube.requests.length = 0;
    await request(gateway.app)
      .put(`/v1/auth/m2m/${newConfigId}`)
      .set('Authorization', ADMIN_AUTH)
      .send({ config: kubeConfig() })
      .expect(200);
    expect(kube.requests.every((r) => r.authorization === undefined)).toBe(true);
    configId = newConfigId;
  });
});

describe('KUBE_TOKEN_REVIEW=true', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(
      { KUBE_SA_TOKEN_FILE: tokenFile, KUBE_API_URL: kube.url, KUBE_TOKEN_REVIEW: 'true' },
      { ca },
    );
    await addConfig(gateway, kubeConfig()).expect(200);
  });
  afterAll(async () => {
    await gateway.close();
    await gateway.database.drop();
  });
  beforeEach(() => {
    kube.tokenReviewStatus = 200;
  });

  it('asks the cluster with the gateway credential and the config audience', async () => {
    const idToken = await podToken('ci', 'builder', 'review-1');
    kube.requests.length = 0;
    await exchange(gateway, idToken).expect(200);
    const [review] = kube.requests.filter((r) => r.path === '/apis/authentication.k8s.io/v1/tokenreviews');
    expect(review!.authorization).toBe(`Bearer ${readFileSync(tokenFile, 'utf8')}`);
    expect(review!.body).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: idToken, audiences: [AUDIENCE] },
    });
  });

  it('refuses the token of a pod that was deleted', async () => {
    const idToken = await podToken('ci', 'builder', 'review-2');
    await exchange(gateway, idToken).expect(200);
    kube.deletePod('ci', 'review-2');
    await exchange(gateway, idToken)
      .expect(401)
      .expect(errorBody(16, 'ID token is invalid: the cluster refused it (pods "review-2" not found)'));
  });

  it('answers 503 when TokenReview cannot be asked, never a pass', async () => {
    const idToken = await podToken('ci', 'builder', 'review-3');
    kube.tokenReviewStatus = 500;
    const response = await exchange(gateway, idToken).expect(503);
    expect(response.body).toEqual(errorBody(14, 'TokenReview failed: it answered with an error'));
  });
});

describe('the OpenShift service CA', () => {
  it('trusts service-ca.crt mounted beside the service-account token for issuers, and only what it holds', async () => {
    const serviceCa = await createTestCa();
    const directory = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-sa-'));
    await writeFile(path.join(directory, 'service-ca.crt'), serviceCa.pem);
    const inCluster = await startFakeIssuer(serviceCa);
    const stranger = await startFakeIssuer(await createTestCa());
    // ISSUER_CA_FILE holds another CA: only service-ca.crt can make inCluster trusted.
    const gateway = await startTestGateway({ KUBE_SA_TOKEN_FILE: path.join(directory, 'token') }, { ca });
    try {
      const generic = (issuer: string) => ({
        type: 'GENERIC',
        tokenExpirationDuration: '5m',
        issuer,
        mappings: [{ key: 'sub', valueExpression: 'ci-bot', role: 'Analyst' }],
      });
      await addConfig(gateway, generic(inCluster.issuer)).expect(200);
      const refused = await addConfig(gateway, generic(stranger.issuer)).expect(400);
      expect(refused.body.message).toContain("the issuer's TLS certificate is not trusted (set ISSUER_CA_FILE)");
    } finally {
      await gateway.close();
      await gateway.database.drop();
      await Promise.all([inCluster.close(), stranger.close()]);
    }
  });
});
