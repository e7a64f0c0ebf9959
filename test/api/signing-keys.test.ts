import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from '@jest/globals';
import { CompactSign, calculateJwkThumbprint, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import pg from 'pg';
import request from 'supertest';
import type { GatewayOptions } from '../../src/gateway.js';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { query } from '../fixtures/sql.js';
import { createTestCa, type TestCa } from '../fixtures/test-ca.js';
import { createTestDatabase, type TestDatabase } from '../fixtures/test-database.js';
import {
  ADMIN_AUTH,
  KEY_ENCRYPTION_KEY,
  errorBody,
  startTestGateway,
  trustIssuer,
  type TestGateway,
} from '../fixtures/test-gateway.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const database of databases) await database.drop();
});

async function storedKeys(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (
      await client.query('SELECT kid, alg, encrypted_private_key, retired_at FROM signing_keys ORDER BY created_at')
    ).rows;
  } finally {
    await client.end();
  }
}

describe('signing keys', () => {
  it.each([
    ['ES256', 'EC'],
    ['RS256', 'RSA'],
    ['EdDSA', 'OKP'],
  ])('signs with TOKEN_SIGNING_ALG=%s', async (alg, kty) => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const issuer = await startFakeIssuer(ca);
    const gateway = await startTestGateway({ TOKEN_SIGNING_ALG: alg }, { ca, database });
    try {
      await trustIssuer(gateway, issuer.issuer, { sub: '.*', role: 'None' });
      const { body } = await request(gateway.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await issuer.sign({ sub: 'x' }) })
        .expect(200);
      const header = decodeProtectedHeader(body.accessToken);
      expect(header.alg).toBe(alg);
      const jwks = (await request(gateway.app).get('/.well-known/jwks.json').expect(200)).body;
      expect(jwks.keys).toEqual([expect.objectContaining({ kty, alg, kid: header.kid, use: 'sig' })]);
      expect(jwks.keys[0]).not.toHaveProperty('d');
    } finally {
      await gateway.close();
      await issuer.close();
    }
  });

  it('stores private keys encrypted, keeps them across restarts, and refuses the wrong key encryption key', async () => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const first = await startTestGateway({}, { ca, database });
    const kid = first.keyRing.jwks().keys[0]!.kid;
    await first.close();

    const [row] = await storedKeys(database.url);
    expect(row.kid).toBe(kid);
    expect(row.encrypted_private_key).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(row.encrypted_private_key).not.toContain('PRIVATE KEY');

    const second = await startTestGateway({}, { ca, database });
    expect(second.keyRing.jwks().keys.map((k) => k.kid)).toEqual([kid]);
    await second.close();

    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    expect(wrongKey).not.toBe(KEY_ENCRYPTION_KEY);
    await expect(startTestGateway({ KEY_ENCRYPTION_KEY: wrongKey }, { ca, database })).rejects.toThrow(
      `signing key ${kid} cannot be decrypted: is KEY_ENCRYPTION_KEY the one it was stored with?`,
    );
  });

  it('refuses to create a key for a new algorithm under the wrong key encryption key', async () => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const first = await startTestGateway({ TOKEN_SIGNING_ALG: 'ES256' }, { ca, database });
    const kid = first.keyRing.jwks().keys[0]!.kid;
    await first.close();

    // A key of its own algorithm would never be decrypted, so the replica must prove its key on another's.
    const wrongKey = Buffer.alloc(32, 1).toString('base64');
    await expect(
      startTestGateway({ TOKEN_SIGNING_ALG: 'EdDSA', KEY_ENCRYPTION_KEY: wrongKey }, { ca, database }),
    ).rejects.toThrow(`signing key ${kid} cannot be decrypted: is KEY_ENCRYPTION_KEY the one it was stored with?`);
    expect((await storedKeys(database.url)).map((row) => row.alg)).toEqual(['ES256']);
  });

  it('keeps the old algorithm signing during a rolling change of TOKEN_SIGNING_ALG, until the next rotation', async () => {
    const ca = await createTestCa();
    const database = await createTestDatabase();
    databases.push(database);
    const first = await startTestGateway({ TOKEN_SIGNING_ALG: 'ES256' }, { ca, database });
    const oldKid = first.keyRing.jwks().keys[0]!.kid;
    await first.close();
    const second = await startTestGateway({ TOKEN_SIGNING_ALG: 'EdDSA' }, { ca, database });
    try {
      const keys = second.keyRing.jwks().keys;
      expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA']);
      expect(keys.map((k) => k.kid)).toContain(oldKid);
      const rows = await storedKeys(database.url);
      expect(rows.map((r) => [r.alg, r.retired_at === null ? 'active' : 'retired'])).toEqual([
        ['ES256', 'active'],
        ['EdDSA', 'active'],
      ]);
      await second.keyRing.rotate();
      const rotated = await storedKeys(database.url);
      expect(rotated.map((r) => [r.alg, r.retired_at === null ? 'active' : 'retired'])).toEqual([
        ['ES256', 'retired'],
        ['EdDSA', 'retired'],
        ['EdDSA', 'active'],
      ]);
      expect(second.keyRing.jwks().keys.map((k) => k.kid)).toContain(oldKid);
    } finally {
      await second.close();
    }
  });
});

/** An access token minted by `gateway` for `sub` (the config must map it). */
async function mintOn(gateway: TestGateway, issuer: FakeIssuer, sub: string): Promise<string> {
  const { body } = await request(gateway.app)
    .post('/v1/auth/m2m/exchange')
    .send({ idToken: await issuer.sign({ sub }) })
    .expect(200);
  return body.accessToken;
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const status = (gateway: TestGateway, token: string) =>
  request(gateway.app).get('/v1/auth/status').set('Authorization', `Bearer ${token}`);
const rotate = (gateway: TestGateway, authorization = ADMIN_AUTH) =>
  request(gateway.app).post('/v1/keys/rotate').set('Authorization', authorization);

/** Polls until `check` passes, or fails after `ms`. */
async function eventually(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await sleep(20);
  }
}

describe('key rotation', () => {
  let ca: TestCa;
  let issuer: FakeIssuer;
  const started: TestGateway[] = [];
  const start = async (env: Record<string, string>, database: TestDatabase, options?: GatewayOptions) => {
    const gateway = await startTestGateway(env, { ca, database, options });
    started.push(gateway);
    return gateway;
  };
  const newDatabase = async () => {
    ca ??= await createTestCa();
    issuer ??= await startFakeIssuer(ca);
    const database = await createTestDatabase();
    databases.push(database);
    return database;
  };
  afterAll(async () => {
    for (const gateway of started) await gateway.close();
    await issuer?.close();
  });

  it('POST /v1/keys/rotate answers the new kid, publishes both keys, and keeps tokens of the old key valid', async () => {
    const gateway = await start({}, await newDatabase());
    const config = await trustIssuer(gateway, issuer.issuer, { sub: 'ops', role: 'Admin' });
    const before = await mintOn(gateway, issuer, 'ops');
    const oldKid = kidOf(before);

    const rotated = await rotate(gateway).expect(200);
    expect(rotated.body).toEqual({ kid: expect.stringMatching(/^[\w-]{43}$/) });
    const { kid } = rotated.body;
    expect(kid).not.toBe(oldKid);

    const jwks = (await request(gateway.app).get('/.well-known/jwks.json').expect(200)).body;
    expect(jwks.keys.map((key: { kid: string }) => key.kid).sort()).toEqual([oldKid, kid].sort());
    expect(kidOf(await mintOn(gateway, issuer, 'ops'))).toBe(kid);
    await status(gateway, before).expect(200);
    expect((await storedKeys(gateway.database.url)).map((row) => [row.kid, row.retired_at === null])).toEqual([
      [oldKid, false],
      [kid, true],
    ]);

    // A token of the retired key still carries its roles: here, the right to rotate again.
    const again = await rotate(gateway, `Bearer ${before}`).expect(200);
    const { body } = await request(gateway.app)
      .get('/v1/audit?outcome=applied&limit=2')
      .set('Authorization', ADMIN_AUTH)
      .expect(200);
    expect(body.events.map((event: Record<string, unknown>) => [event.action, event.actor, event.requestId])).toEqual([
      ['keys.rotate', `sso:${config.id}:ops`, again.headers['x-request-id']],
      ['keys.rotate', 'admin', rotated.headers['x-request-id']],
    ]);
    expect(body.events[1].details).toEqual({ kid, rotation: 'requested' });

    // Rotation does not revoke; deleting the old key's row does (docs/operator-guide.md).
    await query(gateway.database.url, 'DELETE FROM signing_keys WHERE kid = $1', [oldKid]);
    await eventually(async () => (await status(gateway, before)).status === 401, 1000);
    expect(gateway.keyRing.jwks().keys.map((key) => key.kid)).not.toContain(oldKid);
  });

  it('is refused without credentials, and to a caller without Access READ_WRITE', async () => {
    const gateway = await start({}, await newDatabase());
    await trustIssuer(gateway, issuer.issuer, { sub: 'reader', role: 'Analyst' });
    const reader = await mintOn(gateway, issuer, 'reader');
    await request(gateway.app)
      .post('/v1/keys/rotate')
      .expect(401)
      .expect(errorBody(16, 'credentials are missing or invalid'));
    await rotate(gateway, `Bearer ${reader}`)
      .expect(403)
      .expect(errorBody(7, 'this needs READ_WRITE_ACCESS to the Access resource'));
    expect(await storedKeys(gateway.database.url)).toHaveLength(1);
  });

  it('rotates by itself once the key is SIGNING_KEY_ROTATION old, once across replicas', async () => {
    const database = await newDatabase();
    const options = { keyRotationCheckIntervalMs: 20 };
    const [first, second] = await Promise.all([
      start({ SIGNING_KEY_ROTATION: '1h' }, database, options),
      start({ SIGNING_KEY_ROTATION: '1h' }, database, options),
    ]);
    await trustIssuer(first, issuer.issuer, { sub: 'ci', role: 'Analyst' });
    await sleep(300);
    const [{ kid: oldKid }] = await storedKeys(database.url);
    expect(await storedKeys(database.url)).toHaveLength(1);

    // The key turns 2 h old; the change feed tells both replicas, whose checks then race for the lock.
    await query(database.url, `UPDATE signing_keys SET created_at = created_at - interval '2 hours'`);
    await eventually(async () => (await storedKeys(database.url)).length > 1);
    await sleep(500);
    const rows = await storedKeys(database.url);
    expect(rows.map((row) => [row.kid === oldKid, row.retired_at === null])).toEqual([
      [true, false],
      [false, true],
    ]);
    const newKid = rows[1].kid;
    for (const gateway of [first, second]) {
      await eventually(async () => kidOf(await mintOn(gateway, issuer, 'ci')) === newKid, 1000);
      expect(
        gateway.keyRing
          .jwks()
          .keys.map((key) => key.kid)
          .sort(),
      ).toEqual([oldKid, newKid].sort());
    }
    expect(await query(database.url, `SELECT actor, details FROM audit_events WHERE action = 'keys.rotate'`)).toEqual([
      { actor: 'system', details: { kid: newKid, rotation: 'automatic', maxKeyAge: '1h0m0s' } },
    ]);
  });

  it('never rotates with SIGNING_KEY_ROTATION=0', async () => {
    const database = await newDatabase();
    await start({ SIGNING_KEY_ROTATION: '0' }, database, { keyRotationCheckIntervalMs: 20 });
    await query(database.url, `UPDATE signing_keys SET created_at = created_at - interval '10000 hours'`);
    await sleep(300);
    expect(await storedKeys(database.url)).toHaveLength(1);
  });

  it('accepts on one replica a token signed a moment ago by a key rotated on another, before the change feed tells it', async () => {
    const database = await newDatabase();
    // No periodic reload, no feed probe: only the feed (silenced below) or the unknown kid can make B read the keys.
    const options = { fullReloadIntervalMs: 3_600_000, feedHealthIntervalMs: 3_600_000 };
    const a = await start({}, database, options);
    const b = await start({}, database, options);
    await trustIssuer(a, issuer.issuer, { sub: 'ops', role: 'Admin' });
    const first = await mintOn(a, issuer, 'ops');
    await eventually(async () => (await status(b, first)).status === 200, 1000);

    // Both change feeds lose their connection; they listen again (and reload) only a second later.
    await query(
      database.url,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`,
    );
    const { kid } = (await rotate(a).expect(200)).body;
    const token = await mintOn(a, issuer, 'ops');
    expect(kidOf(token)).toBe(kid);
    expect(b.keyRing.verificationKey(kid)).toBeUndefined();
    await status(b, token).expect(200);
    expect(b.keyRing.verificationKey(kid)).toBeDefined();
    await status(b, first).expect(200);

    // A kid no replica ever made is still refused, after (at most) one more read of the keys.
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const strangerKid = await calculateJwkThumbprint(await exportJWK(publicKey));
    const [, payload] = token.split('.');
    const forged = await new CompactSign(Buffer.from(payload!, 'base64url'))
      .setProtectedHeader({ alg: 'ES256', kid: strangerKid, typ: 'JWT' })
      .sign(privateKey);
    await status(b, forged).expect(401);
  });
});
