/**
 * Well-known JWT attacks against the exchange, as a table: each row builds a
 * hostile token and names the answer the gateway must give. Add a row to add
 * a case. The gateway's clock is fixed, so the time edges are exact.
 */
import { createHmac, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { startTestGateway, trustIssuer, type TestGateway } from '../fixtures/test-gateway.js';
import { toDer } from '../fixtures/ecdsa-der.js';

const NOW = Math.floor(Date.now() / 1000);
const SKEW = 30;
const AUDIENCE = 'm2m-gateway';

let gateway: TestGateway;
let issuer: FakeIssuer;
let attackerSite: FakeIssuer;

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const craft = (header: unknown, payload: unknown, signature = '') => `${b64(header)}.${b64(payload)}.${signature}`;
const claims = (overrides: JWTPayload = {}): JWTPayload => ({
  iss: issuer.issuer,
  sub: 'ci-bot',
  aud: AUDIENCE,
  iat: NOW - 10,
  exp: NOW + 300,
  ...overrides,
});
const signed = (overrides: JWTPayload = {}, options: Parameters<FakeIssuer['sign']>[1] = {}) =>
  issuer.sign(claims(overrides), options);
const issuerKey = (alg: string) => issuer.publicKeys().find((key) => key.alg === alg)!;
const segments = (token: string) => token.split('.') as [string, string, string];

async function attackerToken(header: Record<string, unknown>, payload = claims()) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', ...header, ...(header.jwk === true ? { jwk } : {}) })
    .sign(privateKey);
}

/** HS256 over the token with the given secret: the classic RS→HS key confusion when the secret is the public key. */
function hmacToken(secret: string | Buffer, alg = 'HS256', payload = claims()) {
  const signingInput = `${b64({ alg, typ: 'JWT', kid: issuerKey('RS256').kid })}.${b64(payload)}`;
  const hash = alg === 'HS512' ? 'sha512' : 'sha256';
  return `${signingInput}.${createHmac(hash, secret).update(signingInput).digest('base64url')}`;
}

type Expected = [status: number, message: string | RegExp];
const invalid = (reason: string): Expected => [401, `ID token is invalid: ${reason}`];
const malformed = (reason: string): Expected => [400, `the ID token is not a compact JWS: ${reason}`];
const accepted: Expected = [200, ''];

const attacks: [name: string, token: () => Promise<string> | string, expected: Expected][] = [
  // alg none, in any casing
  ...['none', 'None', 'NONE', 'nOnE'].map((alg): [string, () => string, Expected] => [
    `alg ${alg}`,
    () => craft({ alg, typ: 'JWT' }, claims()),
    invalid('algorithm not allowed'),
  ]),
  [
    'alg none with a kid of the issuer',
    () => craft({ alg: 'none', kid: issuerKey('RS256').kid }, claims()),
    invalid('algorithm not allowed'),
  ],
  // RS/HS key confusion
  [
    'HS256 keyed with the issuer RSA public key (PEM)',
    async () =>
      hmacToken(
        createPublicKey({ key: issuerKey('RS256') as JWK & { kty: 'RSA' }, format: 'jwk' }).export({
          type: 'spki',
          format: 'pem',
        }) as string,
      ),
    invalid('algorithm not allowed'),
  ],
  [
    'HS256 keyed with the issuer JWK as JSON',
    () => hmacToken(JSON.stringify(issuerKey('RS256'))),
    invalid('algorithm not allowed'),
  ],
  [
    'HS512 keyed with the issuer JWK modulus',
    () => hmacToken(Buffer.from(issuerKey('RS256').n!, 'base64url'), 'HS512'),
    invalid('algorithm not allowed'),
  ],
  // signatures stripped, blank, moved, forged
  [
    'a stripped signature',
    async () =>
      `${segments(await signed())
        .slice(0, 2)
        .join('.')}.`,
    invalid('signature'),
  ],
  [
    'a blank signature',
    async () =>
      `${segments(await signed())
        .slice(0, 2)
        .join('.')}.AAAA`,
    invalid('signature'),
  ],
  [
    'the signature of another token',
    async () =>
      `${segments(await signed({ sub: 'ci-bot' }))
        .slice(0, 2)
        .join('.')}.${segments(await signed({ sub: 'x' }))[2]}`,
    invalid('signature'),
  ],
  [
    'a tampered payload',
    async () => {
      const [header, , signature] = segments(await signed({ sub: 'nobody' }));
      return `${header}.${b64(claims())}.${signature}`;
    },
    invalid('signature'),
  ],
  [
    'a header switched from RS256 to PS256',
    async () => {
      const [, payload, signature] = segments(await signed());
      return `${b64({ alg: 'PS256', kid: issuerKey('RS256').kid, typ: 'JWT' })}.${payload}.${signature}`;
    },
    invalid('algorithm not allowed'),
  ],
  [
    'a valid signature from another key under the issuer kid',
    () => attackerToken({ kid: issuerKey('RS256').kid }),
    invalid('signature'),
  ],
  ['a valid signature from another key, no kid', () => attackerToken({}), invalid('signature')],
  // keys embedded in the header are never used
  ['an embedded jwk header', () => attackerToken({ jwk: true }), invalid('signature')],
  [
    'an embedded jwk header with the issuer kid',
    () => attackerToken({ jwk: true, kid: issuerKey('RS256').kid }),
    invalid('signature'),
  ],
  [
    'a jku header to the attacker',
    () => attackerToken({ jku: `${attackerSite.issuer}/jwks`, kid: 'attacker' }),
    invalid('unknown key'),
  ],
  [
    'an x5u header to the attacker',
    () => attackerToken({ x5u: `${attackerSite.issuer}/cert.pem`, kid: 'attacker' }),
    invalid('unknown key'),
  ],
  [
    'an x5c header with a self-made certificate chain',
    () => attackerToken({ x5c: ['MIIBszCCAVmgAwIBAgIUQ2hhaW4tb2YtdHJ1c3Q='], kid: issuerKey('RS256').kid }),
    invalid('signature'),
  ],
  // hostile kid values
  ['a path traversal kid', () => signed({}, { kid: '../../../../etc/passwd' }), invalid('unknown key')],
  ['an SQL injection kid', () => signed({}, { kid: "' OR '1'='1' --" }), invalid('unknown key')],
  ['a 10 KB kid', () => signed({}, { kid: 'k'.repeat(10 * 1024) }), invalid('unknown key')],
  ['a numeric kid', () => signed({}, { header: { kid: 1 } }), invalid('unknown key')],
  ['an object kid', () => signed({}, { header: { kid: { $ne: null } } }), invalid('unknown key')],
  ['a null kid', () => signed({}, { header: { kid: null } }), invalid('unknown key')],
  // header parameters that change how the JWS is processed
  [
    'an unknown crit extension',
    () => issuer.signRaw({ alg: 'RS256', crit: ['urn:evil'], 'urn:evil': true }, JSON.stringify(claims())),
    invalid('unsupported'),
  ],
  [
    'an empty crit list',
    () => issuer.signRaw({ alg: 'RS256', crit: [] }, JSON.stringify(claims())),
    invalid('malformed'),
  ],
  [
    'b64: false',
    () => issuer.signRaw({ alg: 'RS256', b64: false, crit: ['b64'] }, JSON.stringify(claims())),
    invalid('malformed'),
  ],
  // ECDSA encodings
  [
    'the ECDSA zero signature (CVE-2022-21449)',
    async () =>
      `${segments(await signed({}, { alg: 'ES256' }))
        .slice(0, 2)
        .join('.')}.${Buffer.alloc(64).toString('base64url')}`,
    invalid('signature'),
  ],
  [
    'a DER-encoded ECDSA signature',
    async () => {
      const [header, payload, signature] = segments(await signed({}, { alg: 'ES256' }));
      return `${header}.${payload}.${toDer(Buffer.from(signature, 'base64url')).toString('base64url')}`;
    },
    invalid('signature'),
  ],
  [
    'a truncated ECDSA signature',
    async () => {
      const [header, payload, signature] = segments(await signed({}, { alg: 'ES256' }));
      return `${header}.${payload}.${signature.slice(0, 40)}`;
    },
    invalid('signature'),
  ],
  [
    'an RS256 header over an ES256 key and signature',
    () => issuer.signRaw({ alg: 'RS256', kid: issuerKey('ES256').kid }, JSON.stringify(claims()), 'ES256'),
    invalid('unknown key'),
  ],
  [
    'a properly signed PS256 token from an issuer that does not advertise PS256',
    () => issuer.signRaw({ alg: 'PS256', kid: issuerKey('RS256').kid }, JSON.stringify(claims()), 'RS256'),
    invalid('algorithm not allowed'),
  ],
  // time, at the edges of CLOCK_SKEW_SECONDS
  ['exp just outside the skew', () => signed({ exp: NOW - SKEW - 1 }), invalid('expired')],
  ['exp just inside the skew', () => signed({ exp: NOW - SKEW + 1 }), accepted],
  ['nbf just outside the skew', () => signed({ nbf: NOW + SKEW + 1 }), invalid('not yet valid')],
  ['nbf just inside the skew', () => signed({ nbf: NOW + SKEW - 1 }), accepted],
  [
    'iat just outside the skew (issued in the future)',
    () => signed({ iat: NOW + SKEW + 1 }),
    invalid('issued in the future'),
  ],
  ['iat just inside the skew', () => signed({ iat: NOW + SKEW - 1 }), accepted],
  ['no exp', () => signed({ exp: undefined }), invalid('no exp')],
  [
    'exp as a string',
    () => signed({ exp: String(NOW + 300) as unknown as number }),
    invalid('the exp claim is malformed'),
  ],
  ['nbf as an object', () => signed({ nbf: {} as unknown as number }), invalid('the nbf claim is malformed')],
  // audience
  ['another audience', () => signed({ aud: 'someone-else' }), invalid('audience mismatch')],
  ['no audience', () => signed({ aud: undefined }), invalid('audience mismatch')],
  ['the audience in another case', () => signed({ aud: AUDIENCE.toUpperCase() }), invalid('audience mismatch')],
  // issuer tricks
  [
    'a duplicated iss member',
    async () => {
      const [header, , signature] = segments(await signed());
      const payload = `{"iss":"https://evil.example","sub":"ci-bot","iss":"${issuer.issuer}","aud":"${AUDIENCE}","exp":${NOW + 60}}`;
      return `${header}.${Buffer.from(payload).toString('base64url')}.${signature}`;
    },
    malformed('the payload has a duplicated member name'),
  ],
  [
    'a duplicated alg member in the header',
    async () => {
      const [, payload, signature] = segments(await signed());
      return `${Buffer.from('{"alg":"none","alg":"RS256"}').toString('base64url')}.${payload}.${signature}`;
    },
    malformed('the header has a duplicated member name'),
  ],
  [
    'the issuer with a trailing slash',
    () => signed({ iss: `${issuer.issuer}/` }),
    [401, /^issuer ".*\/" is not configured$/],
  ],
  ['the issuer in upper case', () => signed({ iss: issuer.issuer.toUpperCase() }), [401, /is not configured$/]],
  [
    'an iss that is an array',
    () => signed({ iss: [issuer.issuer] as unknown as string }),
    [400, 'the ID token has no iss'],
  ],
  ['typ at+jwt', () => signed({}, { header: { typ: 'at+jwt' } }), invalid('access tokens are not ID tokens')],
  [
    'typ application/at+jwt',
    () => signed({}, { header: { typ: 'application/at+JWT' } }),
    invalid('access tokens are not ID tokens'),
  ],
  // shapes
  ['a JWE (five segments)', () => 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d', malformed('not a compact JWS')],
  ['segments that are not base64url', () => 'eyJ+.eyJ/.c2ln', malformed('not a compact JWS')],
  [
    'a payload that is a JSON array',
    () => craft({ alg: 'RS256' }, [claims()]),
    malformed('the payload is not a JSON object'),
  ],
  [
    'a token over 16 KiB',
    () => signed({ padding: 'p'.repeat(16 * 1024) }),
    [400, 'idToken is larger than 16384 bytes'],
  ],
  [
    'claims nested 1500 deep',
    () => {
      const body = JSON.stringify(claims()).slice(0, -1);
      return issuer.signRaw({ alg: 'RS256' }, `${body},"deep":${'{"n":'.repeat(1500)}1${'}'.repeat(1500)}}`);
    },
    accepted,
  ],
  [
    'more than 1000 claim values',
    () => signed({ many: Array.from({ length: 1200 }, (_, i) => `v${i}`) as unknown as string }),
    invalid('more than 1000 claim values'),
  ],
];

beforeAll(async () => {
  gateway = await startTestGateway(
    { CLOCK_SKEW_SECONDS: String(SKEW), EXCHANGE_RATE_LIMIT: '0' },
    { options: { now: () => new Date(NOW * 1000), jwksRefetchCooldownMs: 60_000 } },
  );
  issuer = await startFakeIssuer(gateway.ca);
  attackerSite = await startFakeIssuer(gateway.ca);
  await trustIssuer(gateway, issuer.issuer, { audience: AUDIENCE });
  // Warm the key cache, so that unknown kids are judged against known keys.
  await request(gateway.app)
    .post('/v1/auth/m2m/exchange')
    .send({ idToken: await signed() })
    .expect(200);
});

afterAll(async () => {
  await issuer.close();
  await attackerSite.close();
  await gateway.close();
  await gateway.database.drop();
});

describe('hostile ID tokens', () => {
  it.each(attacks)('%s', async (_name, build, [status, message]) => {
    const response = await request(gateway.app)
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: await build() });
    expect(response.status).toBe(status);
    if (status === 200) return;
    expect(response.body).toEqual({
      code: expect.any(Number),
      message: expect.any(String),
      details: [],
      error: response.body.message,
    });
    expect(response.body.message).toMatch(message);
  });

  it('never fetched anything from a jku or x5u URL', () => {
    expect(attackerSite.requests).toEqual([]);
  });

  it('the gateway itself signs nothing an exchange would accept', async () => {
    const minted = (
      await request(gateway.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await signed() })
        .expect(200)
    ).body.accessToken;
    await request(gateway.app).post('/v1/auth/m2m/exchange').send({ idToken: minted }).expect(401).expect({
      code: 16,
      message: 'ID token is invalid: access tokens are not ID tokens',
      details: [],
      error: 'ID token is invalid: access tokens are not ID tokens',
    });
  });
});
