/** Signatures on the gateway's crypto thread give what node:crypto gives on the main thread. */
import { constants, generateKeyPairSync, sign, verify } from 'node:crypto';
import { afterAll, describe, expect, it } from '@jest/globals';
import { CryptoThreadError, createCryptoThread } from '../../src/keys/crypto-thread.js';

const thread = createCryptoThread();
afterAll(() => thread.close());

const data = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaS1ib3QifQ';
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const P1363 = { dsaEncoding: 'ieee-p1363' } as const;
const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };

describe('createCryptoThread', () => {
  it.each([
    ['ES256', 'sha256', ec, P1363],
    ['RS256', 'sha256', rsa, undefined],
    ['PS256', 'sha256', rsa, PSS],
    ['EdDSA', null, ed, undefined],
  ] as const)('signs and verifies %s as node:crypto does', async (_alg, hash, { privateKey, publicKey }, options) => {
    const signature = await thread.sign(hash, data, privateKey, options);
    const bytes = Buffer.from(signature, 'base64url');
    expect(verify(hash, Buffer.from(data), { key: publicKey, ...options }, bytes)).toBe(true);
    const theirs = sign(hash, Buffer.from(data), { key: privateKey, ...options }).toString('base64url');
    await expect(thread.verify(hash, data, publicKey, theirs, options)).resolves.toBe(true);
    await expect(thread.verify(hash, `${data}x`, publicKey, theirs, options)).resolves.toBe(false);
  });

  it('reads data as latin1, as the signing input of a compact JWS is', async () => {
    const text = 'ÿ\u0080a';
    const signature = await thread.sign('sha256', text, ec.privateKey, P1363);
    expect(
      verify(
        'sha256',
        Buffer.from(text, 'latin1'),
        { key: ec.publicKey, ...P1363 },
        Buffer.from(signature, 'base64url'),
      ),
    ).toBe(true);
  });

  it('refuses a job node:crypto refuses, with its reason, and goes on working', async () => {
    const refusals = [thread.sign('no-such-digest', data, rsa.privateKey), thread.sign('sha256', data, rsa.publicKey)];
    await expect(refusals[0]).rejects.toThrow(/digest/i);
    await expect(refusals[1]).rejects.toThrow(/private/i);
    // node:crypto's verdict on a job, not the thread failing (which verification does not count as a bad signature).
    for (const refusal of refusals) await expect(refusal).rejects.not.toBeInstanceOf(CryptoThreadError);
    const jobs = Array.from({ length: 20 }, () => thread.sign('sha256', data, ec.privateKey, P1363));
    expect(new Set(await Promise.all(jobs)).size).toBe(20);
  });

  it('after close, refuses what was under way and what comes later', async () => {
    const closing = createCryptoThread();
    const underWay = Array.from({ length: 50 }, () => closing.sign('sha256', data, rsa.privateKey));
    await closing.close();
    const refused = (await Promise.allSettled(underWay)).filter((outcome) => outcome.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const { reason } of refused) expect(reason).toBeInstanceOf(CryptoThreadError);
    const later = closing.sign('sha256', data, rsa.privateKey);
    await expect(later).rejects.toThrow('the crypto thread is closed');
    await expect(later).rejects.toBeInstanceOf(CryptoThreadError);
  });
});
