/**
 * The node:crypto JWS adapter against jose: every token below is judged by
 * both, and they must agree (same outcome, same error code), besides the
 * outcome each row names.
 */
import { constants, createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { SignJWT, jwtVerify, type JWTClaimVerificationOptions, type JWTPayload } from 'jose';
import {
  createJwsSigner,
  jwsKey,
  parseCompactJws,
  verifiedClaims,
  verifyCompactJws,
} from '../../src/keys/jws-node-crypto.js';
import { toDer } from '../fixtures/ecdsa-der.js';

const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
type Alg = (typeof ALGS)[number];

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEYS: Record<Alg, { publicKey: KeyObject; privateKey: KeyObject }> = {
  RS256: rsa,
  RS384: rsa,
  RS512: rsa,
  PS256: rsa,
  PS384: rsa,
  PS512: rsa,
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ES384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  ES512: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  EdDSA: generateKeyPairSync('ed25519'),
};
const smallRsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
const ed448 = generateKeyPairSync('ed448');

const NOW = 1_800_000_000;
const ISSUER = 'https://issuer.example';
const OPTIONS: JWTClaimVerificationOptions = {
  issuer: ISSUER,
  audience: 'gateway',
  clockTolerance: 30,
  requiredClaims: ['exp'],
  currentDate: new Date(NOW * 1000),
};
const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  sub: 'ci-bot',
  aud: 'gateway',
  iat: NOW - 10,
  exp: NOW + 300,
  ...overrides,
});

const b64 = (value: unknown) =>
  (Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))).toString(
    'base64url',
  );
const hashOf = (alg: string) => (alg === 'EdDSA' ? null : `sha${alg.slice(2)}`);

/** Signs any header and payload bytes with node:crypto, bypassing every check of both libraries. */
function rawSign(
  alg: Alg,
  header: unknown,
  payload: unknown,
  options: { key?: KeyObject; saltLength?: number; dsaEncoding?: 'der' | 'ieee-p1363' } = {},
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const key = options.key ?? KEYS[alg].privateKey;
  const signature = sign(hashOf(alg), Buffer.from(input), {
    key,
    dsaEncoding: options.dsaEncoding ?? 'ieee-p1363',
    ...(alg.startsWith('PS')
      ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: options.saltLength ?? Number(alg.slice(2)) / 8 }
      : {}),
  });
  return `${input}.${signature.toString('base64url')}`;
}
const token = (alg: Alg, overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
  rawSign(alg, { alg, typ: 'JWT', ...header }, claims(overrides));

type Outcome = { payload: JWTPayload } | { error: string; claim?: string };
const outcomeOf = (error: unknown): Outcome => {
  const { code, name, claim } = error as { code?: string; name: string; claim?: string };
  return claim === undefined ? { error: code ?? name } : { error: code ?? name, claim };
};

/** The adapter as the ID token verifier uses it: header, key for its algorithm, signature, claims. */
async function adapterVerdict(jwt: string, key: KeyObject, algorithms: readonly string[] = ALGS): Promise<Outcome> {
  try {
    const jws = parseCompactJws(jwt, algorithms);
    await verifyCompactJws(jws, jwsKey(key, jws.alg, 'public'));
    return { payload: verifiedClaims(jws, OPTIONS) };
  } catch (error) {
    return outcomeOf(error);
  }
}

async function joseVerdict(jwt: string, key: KeyObject, algorithms: readonly string[] = ALGS): Promise<Outcome> {
  try {
    return { payload: (await jwtVerify(jwt, key, { ...OPTIONS, algorithms: [...algorithms] })).payload };
  } catch (error) {
    return outcomeOf(error);
  }
}

async function expectVerdict(jwt: string, key: KeyObject, expected: string, algorithms?: readonly string[]) {
  const adapter = await adapterVerdict(jwt, key, algorithms);
  expect(adapter).toEqual(await joseVerdict(jwt, key, algorithms));
  if (expected === 'ok') expect(adapter).toHaveProperty('payload');
  else expect(adapter).toMatchObject({ error: expected });
}

const segments = (jwt: string) => jwt.split('.') as [string, string, string];
const withSignature = (jwt: string, signature: Buffer | string) =>
  `${segments(jwt).slice(0, 2).join('.')}.${typeof signature === 'string' ? signature : signature.toString('base64url')}`;
const signatureOf = (jwt: string) => Buffer.from(segments(jwt)[2], 'base64url');

describe('verifying with node:crypto, as jose does', () => {
  it.each(ALGS)('accepts %s signed by jose, and jose accepts it signed by the adapter', async (alg) => {
    const { publicKey, privateKey } = KEYS[alg];
    const byJose = await new SignJWT(claims()).setProtectedHeader({ alg, typ: 'JWT' }).sign(privateKey);
    await expectVerdict(byJose, publicKey, 'ok');
    const byAdapter = await createJwsSigner(jwsKey(privateKey, alg, 'private'), { alg, kid: 'k', typ: 'JWT' })(
      JSON.stringify(claims()),
    );
    await expectVerdict(byAdapter, publicKey, 'ok');
    expect(JSON.parse(Buffer.from(segments(byAdapter)[0], 'base64url').toString())).toEqual({
      alg,
      kid: 'k',
      typ: 'JWT',
    });
  });

  it.each(ALGS)('refuses %s signed by another key of the same type', async (alg) => {
    const curve = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg as string];
    const other = curve
      ? generateKeyPairSync('ec', { namedCurve: curve })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : otherRsa;
    const forged = rawSign(alg, { alg }, claims(), { key: other.privateKey });
    await expectVerdict(forged, KEYS[alg].publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it.each(ALGS)('refuses %s with a tampered payload, a tampered header, or a blank signature', async (alg) => {
    const { publicKey } = KEYS[alg];
    const [header, , signature] = segments(token(alg));
    await expectVerdict(
      `${header}.${b64(claims({ sub: 'admin' }))}.${signature}`,
      publicKey,
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    );
    const [, payload] = segments(token(alg));
    await expectVerdict(
      `${b64({ alg, typ: 'JWT', kid: 'x' })}.${payload}.${signature}`,
      publicKey,
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    );
    await expectVerdict(withSignature(token(alg), ''), publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  describe('ECDSA and EdDSA signatures are R || S of exactly the curve size', () => {
    const shapes: [Alg, number][] = [
      ['ES256', 64],
      ['ES384', 96],
      ['ES512', 132],
      ['EdDSA', 64],
    ];
    it.each(shapes)('%s: one byte short, one byte long, zero-padded and all zeros are refused', async (alg, size) => {
      const { publicKey } = KEYS[alg];
      const jwt = token(alg);
      const signature = signatureOf(jwt);
      expect(signature).toHaveLength(size);
      for (const bad of [
        signature.subarray(0, size - 1),
        Buffer.concat([signature, Buffer.alloc(1)]),
        Buffer.concat([Buffer.alloc(1), signature]),
        Buffer.alloc(size),
      ]) {
        await expectVerdict(withSignature(jwt, bad), publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      }
    });

    it.each(['ES256', 'ES384', 'ES512'] as const)('%s: a DER-encoded signature is refused', async (alg) => {
      const { publicKey } = KEYS[alg];
      const der = rawSign(alg, { alg }, claims(), { dsaEncoding: 'der' });
      await expectVerdict(der, publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
      await expectVerdict(
        withSignature(der, toDer(signatureOf(token(alg)))),
        publicKey,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      );
    });
  });

  describe('RSA padding', () => {
    it.each(['PS256', 'PS384', 'PS512'] as const)('%s: a salt of another length is refused', async (alg) => {
      for (const saltLength of [0, 20, Number(alg.slice(2)) / 8 + 1]) {
        await expectVerdict(
          rawSign(alg, { alg }, claims(), { saltLength }),
          rsa.publicKey,
          'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
        );
      }
    });

    it('a PKCS#1 v1.5 signature under a PS256 header is refused, and the other way round', async () => {
      const [, payload, pkcs1] = segments(rawSign('RS256', { alg: 'PS256' }, claims()));
      await expectVerdict(
        `${b64({ alg: 'PS256' })}.${payload}.${pkcs1}`,
        rsa.publicKey,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      );
      const [, payload2, pss] = segments(rawSign('PS256', { alg: 'RS256' }, claims()));
      await expectVerdict(
        `${b64({ alg: 'RS256' })}.${payload2}.${pss}`,
        rsa.publicKey,
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      );
    });
  });

  describe('the algorithm', () => {
    const rs256 = () => token('RS256');
    it.each(['none', 'None', 'HS256', 'RS256'])('refuses alg %s when not allowed', async (alg) => {
      const [, payload] = segments(rs256());
      const jwt = alg === 'RS256' ? rs256() : `${b64({ alg })}.${payload}.`;
      await expectVerdict(jwt, rsa.publicKey, 'ERR_JOSE_ALG_NOT_ALLOWED', ['ES256', 'PS256']);
    });

    it('refuses HS256 keyed with the public key, however the key is written', async () => {
      const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
      const jwk = JSON.stringify(rsa.publicKey.export({ format: 'jwk' }));
      for (const secret of [pem, jwk]) {
        const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims())}`;
        const jwt = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
        await expectVerdict(jwt, rsa.publicKey, 'ERR_JOSE_ALG_NOT_ALLOWED');
      }
    });

    it.each([
      ['missing', {}],
      ['empty', { alg: '' }],
      ['a number', { alg: 256 }],
      ['an array', { alg: ['RS256'] }],
    ])('refuses a header whose alg is %s', async (_name, header) => {
      const [, payload, signature] = segments(rs256());
      await expectVerdict(`${b64(header)}.${payload}.${signature}`, rsa.publicKey, 'ERR_JWS_INVALID');
    });

    it('refuses a key that does not suit the algorithm: its type, its curve, RSA under 2048 bits', async () => {
      const [, payload] = segments(rs256());
      const cases: [Alg, KeyObject][] = [
        ['ES256', rsa.publicKey],
        ['RS256', KEYS.ES256.publicKey],
        ['ES256', KEYS.ES384.publicKey],
        ['ES384', KEYS.ES256.publicKey],
        ['ES512', KEYS.ES256.publicKey],
        ['ES256', secp256k1.publicKey],
        ['EdDSA', KEYS.ES256.publicKey],
        ['RS256', KEYS.EdDSA.publicKey],
        ['EdDSA', ed448.publicKey],
        ['RS256', smallRsa.publicKey],
        ['PS256', smallRsa.publicKey],
      ];
      for (const [alg, key] of cases) {
        const jwt = `${b64({ alg })}.${payload}.${b64('signature')}`;
        expect(await adapterVerdict(jwt, key)).toEqual({ error: 'TypeError' });
        // jose's error depends on how it got at the key; what matters is that it refuses too.
        expect(await joseVerdict(jwt, key)).toHaveProperty('error');
      }
    });

    it('refuses private keys for verifying, public keys for signing, and algorithms it does not know', () => {
      expect(() => jwsKey(rsa.privateKey, 'RS256', 'public')).toThrow(TypeError);
      expect(() => jwsKey(rsa.publicKey, 'RS256', 'private')).toThrow(TypeError);
      for (const alg of ['none', 'HS256', 'Ed25519', 'ES256K', 'RSA-OAEP', '']) {
        expect(() => jwsKey(rsa.publicKey, alg, 'public')).toThrow(TypeError);
      }
    });

    it('verifies only with a key prepared for the algorithm of the header', async () => {
      const jws = parseCompactJws(token('RS256'), ALGS);
      await expect(verifyCompactJws(jws, jwsKey(rsa.publicKey, 'PS256', 'public'))).rejects.toThrow(TypeError);
      await expect(verifyCompactJws(jws, jwsKey(rsa.privateKey, 'RS256', 'private'))).rejects.toThrow(TypeError);
      expect(() => createJwsSigner(jwsKey(rsa.privateKey, 'RS256', 'private'), { alg: 'PS256' })).toThrow(TypeError);
      expect(() => createJwsSigner(jwsKey(rsa.publicKey, 'RS256', 'public'), { alg: 'RS256' })).toThrow(TypeError);
    });
  });

  describe('the header', () => {
    const payload = () => segments(token('RS256'))[1];
    const cases: [string, string, string][] = [
      ['not JSON', b64('{"alg":"RS256"'), 'ERR_JWS_INVALID'],
      ['a JSON array', b64(['RS256']), 'ERR_JWS_INVALID'],
      ['a JSON string', b64('"RS256"'), 'ERR_JWS_INVALID'],
      ['null', b64('null'), 'ERR_JWS_INVALID'],
      ['not UTF-8', b64(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), 'ERR_JWS_INVALID'],
      ['empty', '', 'ERR_JWS_INVALID'],
      ['not base64url', 'eyJ+', 'ERR_JWS_INVALID'],
      ['of a length base64 cannot have', `${b64({ alg: 'RS256' })}AB`.slice(0, -1), 'ERR_JWS_INVALID'],
    ];
    it.each(cases)('refuses a header that is %s', async (_name, header) => {
      await expectVerdict(`${header}.${payload()}.${segments(token('RS256'))[2]}`, rsa.publicKey, 'ERR_JWS_INVALID');
    });

    it('accepts a header that starts with a byte order mark, as jose does', async () => {
      const jwt = rawSign(
        'RS256',
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"alg":"RS256"}')]),
        claims(),
      );
      await expectVerdict(jwt, rsa.publicKey, 'ok');
    });

    it.each([
      ['two segments', (jwt: string) => segments(jwt).slice(0, 2).join('.')],
      ['four segments', (jwt: string) => `${jwt}.x`],
      ['five segments (a JWE)', (jwt: string) => `${jwt}.x.y`],
    ])('refuses %s', async (_name, reshape) => {
      await expectVerdict(reshape(token('RS256')), rsa.publicKey, 'ERR_JWS_INVALID');
    });

    it('refuses a signature that is not base64url', async () => {
      for (const signature of ['a+b/', 'abcde', 'a.b']) {
        await expectVerdict(withSignature(token('RS256'), signature), rsa.publicKey, 'ERR_JWS_INVALID');
      }
    });
  });

  describe('crit and b64 (RFC 7515 §4.1.11, RFC 7797)', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['an unknown extension', { crit: ['urn:evil'], 'urn:evil': true }, 'ERR_JOSE_NOT_SUPPORTED'],
      ['an unknown extension beside b64', { crit: ['b64', 'exp'], b64: true, exp: 1 }, 'ERR_JOSE_NOT_SUPPORTED'],
      ['an empty list', { crit: [] }, 'ERR_JWS_INVALID'],
      ['a string', { crit: 'b64', b64: true }, 'ERR_JWS_INVALID'],
      ['an empty name', { crit: [''] }, 'ERR_JWS_INVALID'],
      ['a name that is not a string', { crit: [1] }, 'ERR_JWS_INVALID'],
      ['b64 named but absent', { crit: ['b64'] }, 'ERR_JWS_INVALID'],
      ['b64 that is not a boolean', { crit: ['b64'], b64: 'false' }, 'ERR_JWS_INVALID'],
      ['b64: false, signed', { crit: ['b64'], b64: false }, 'ERR_JWT_INVALID'],
      ['b64: true', { crit: ['b64'], b64: true }, 'ok'],
      ['b64: false without crit (ignored)', { b64: false }, 'ok'],
      ['crit: null', { crit: null }, 'ERR_JWS_INVALID'],
    ];
    it.each(cases)('%s', async (_name, extra, expected) => {
      await expectVerdict(token('RS256', {}, extra), rsa.publicKey, expected);
    });

    it('refuses b64: false over a forged signature as a bad signature, before looking at b64', async () => {
      const forged = withSignature(token('RS256', {}, { crit: ['b64'], b64: false }), signatureOf(token('RS256')));
      await expectVerdict(forged, rsa.publicKey, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    });
  });

  describe('the claims, judged by jose', () => {
    const cases: [string, unknown, string][] = [
      ['valid', claims(), 'ok'],
      ['a JSON array', [claims()], 'ERR_JWT_INVALID'],
      ['not JSON', '{"iss":', 'ERR_JWT_INVALID'],
      ['not UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'ERR_JWT_INVALID'],
      ['expired beyond the tolerance', claims({ exp: NOW - 31 }), 'ERR_JWT_EXPIRED'],
      ['expired within the tolerance', claims({ exp: NOW - 29 }), 'ok'],
      ['not yet valid', claims({ nbf: NOW + 31 }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['without exp', claims({ exp: undefined }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['with exp as a string', claims({ exp: String(NOW + 60) }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['of another issuer', claims({ iss: `${ISSUER}/` }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['without iss', claims({ iss: undefined }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['of another audience', claims({ aud: ['other', 'GATEWAY'] }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
      ['among other audiences', claims({ aud: ['other', 'gateway'] }), 'ok'],
      ['with iat as an object', claims({ iat: {} }), 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ];
    it.each(cases)('a payload %s', async (_name, payload, expected) => {
      await expectVerdict(rawSign('ES256', { alg: 'ES256' }, payload), KEYS.ES256.publicKey, expected);
    });

    it('hands back the payload as signed', async () => {
      const payload = claims({ nested: { deep: [1, 'two', null] }, big: 2 ** 60 });
      const jws = parseCompactJws(rawSign('EdDSA', { alg: 'EdDSA' }, payload), ALGS);
      await verifyCompactJws(jws, jwsKey(KEYS.EdDSA.publicKey, 'EdDSA', 'public'));
      expect(verifiedClaims(jws, OPTIONS)).toEqual(JSON.parse(JSON.stringify(payload)));
    });
  });
});
