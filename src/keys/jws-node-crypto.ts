import { KeyObject, constants } from 'node:crypto';
import { UnsecuredJWT, errors, type CryptoKey, type JWTClaimVerificationOptions, type JWTPayload } from 'jose';
import { CryptoThreadError, createCryptoThread, type SignatureOptions } from './crypto-thread.js';

/**
 * Compact JWS (RFC 7515 §7.1) signed and verified with node:crypto on
 * KeyObjects, on a thread of their own beside the main thread that serves
 * HTTP (src/keys/crypto-thread.ts). jose's WebCrypto path costs about four
 * times as much per token and queues on libuv's thread pool. jose still
 * imports keys and picks them from key sets; this module repeats what its
 * `jwtVerify` checks of the header, in the same order and with the same error
 * classes, and hands the claims to jose.
 */

interface Algorithm {
  /** The digest; EdDSA hashes inside the algorithm. */
  readonly hash: string | null;
  readonly keyType: 'rsa' | 'ec' | 'ed25519';
  /** EC: the curve the algorithm is defined on (RFC 7518 §3.4). */
  readonly curve?: string;
  /** RSASSA-PSS with a salt as long as the hash (RFC 7518 §3.5). */
  readonly saltLength?: number;
  /** ECDSA and EdDSA: the exact length of R || S (RFC 7518 §3.4, RFC 8037 §3.1). */
  readonly signatureBytes?: number;
}

const rsa = (bits: number): Algorithm => ({ hash: `sha${bits}`, keyType: 'rsa' });
const pss = (bits: number): Algorithm => ({ hash: `sha${bits}`, keyType: 'rsa', saltLength: bits / 8 });
const ecdsa = (bits: number, curve: string, signatureBytes: number): Algorithm => ({
  hash: `sha${bits}`,
  keyType: 'ec',
  curve,
  signatureBytes,
});

const ALGORITHMS: ReadonlyMap<string, Algorithm> = new Map([
  ['RS256', rsa(256)],
  ['RS384', rsa(384)],
  ['RS512', rsa(512)],
  ['PS256', pss(256)],
  ['PS384', pss(384)],
  ['PS512', pss(512)],
  ['ES256', ecdsa(256, 'prime256v1', 64)],
  ['ES384', ecdsa(384, 'secp384r1', 96)],
  ['ES512', ecdsa(512, 'secp521r1', 132)],
  ['EdDSA', { hash: null, keyType: 'ed25519', signatureBytes: 64 }],
]);

/** RFC 7518 §3.3, §3.5: and jose's floor. */
const MIN_RSA_BITS = 2048;

/** A KeyObject checked once against the algorithm it is used for. */
export interface JwsKey {
  readonly alg: string;
  readonly type: 'public' | 'private';
  readonly key: KeyObject;
}

/**
 * Checks a key against an algorithm, as jose checks a CryptoKey: public or
 * private as asked, the key type of the algorithm, its curve, and RSA keys
 * of 2048 bits or more. A mismatch is the caller's mistake, not the token's.
 *
 * @throws TypeError when the key does not suit the algorithm
 */
export function jwsKey(key: KeyObject | CryptoKey, alg: string, type: 'public' | 'private'): JwsKey {
  const algorithm = ALGORITHMS.get(alg);
  if (!algorithm) throw new TypeError(`unsupported JWS algorithm ${JSON.stringify(alg)}`);
  const keyObject = key instanceof KeyObject ? key : KeyObject.from(key);
  const details = keyObject.asymmetricKeyDetails ?? {};
  if (keyObject.type !== type) throw new TypeError(`${alg} needs a ${type} key, not a ${keyObject.type} one`);
  if (keyObject.asymmetricKeyType !== algorithm.keyType) {
    throw new TypeError(`${alg} needs a key of type ${algorithm.keyType}, not ${keyObject.asymmetricKeyType}`);
  }
  if (algorithm.curve !== undefined && details.namedCurve !== algorithm.curve) {
    throw new TypeError(`${alg} needs a key on ${algorithm.curve}, not ${details.namedCurve}`);
  }
  if (algorithm.keyType === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new TypeError(`${alg} needs an RSA key of ${MIN_RSA_BITS} bits or more`);
  }
  return { alg, type, key: keyObject };
}

/** A compact JWS whose protected header passed jose's rules; its signature is not checked yet. */
export interface CompactJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly alg: string;
  /** False only when `crit` names `b64` and the header sets it to false (RFC 7797). */
  readonly b64: boolean;
  /** `header.payload`, the text the signature covers. */
  readonly signingInput: string;
  readonly encodedPayload: string;
  readonly encodedSignature: string;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** jose decodes with a fatal decoder: bytes that are not UTF-8 make the token malformed, not replaced. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64url segment as jose decodes it: a length of 4n + 1 cannot be base64. */
function decodeSegment(segment: string, name: string): Buffer {
  if (!BASE64URL.test(segment) || segment.length % 4 === 1) {
    throw new errors.JWSInvalid(`Failed to base64url decode the ${name}`);
  }
  return Buffer.from(segment, 'base64url');
}

function parseHeader(segment: string): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(strictUtf8.decode(decodeSegment(segment, 'protected header')));
  } catch (cause) {
    throw new errors.JWSInvalid('JWS Protected Header is invalid', { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new errors.JWSInvalid('JWS Protected Header is invalid');
  }
  return header as Record<string, unknown>;
}

/**
 * RFC 7515 §4.1.11: every name in `crit` must be understood; `b64` (RFC 7797)
 * is the only one jose understands, so only it is accepted.
 *
 * @returns the value of `b64`
 */
function checkCrit(header: Readonly<Record<string, unknown>>): boolean {
  const { crit } = header;
  if (crit === undefined) return true;
  if (!Array.isArray(crit) || crit.length === 0 || crit.some((name) => typeof name !== 'string' || name.length === 0)) {
    throw new errors.JWSInvalid(
      '"crit" (Critical) Header Parameter MUST be an array of non-empty strings when present',
    );
  }
  for (const name of crit as string[]) {
    if (name !== 'b64') throw new errors.JOSENotSupported(`Extension Header Parameter "${name}" is not recognized`);
    if (header.b64 === undefined) throw new errors.JWSInvalid(`Extension Header Parameter "${name}" is missing`);
  }
  if (!crit.includes('b64')) return true;
  if (typeof header.b64 !== 'boolean') {
    throw new errors.JWSInvalid('The "b64" (base64url-encode payload) Header Parameter must be a boolean');
  }
  return header.b64;
}

/**
 * Splits a compact JWS and judges its protected header as jose's `jwtVerify`
 * does, before any key is looked for: a JSON object, `crit` understood,
 * `alg` present and in `algorithms`.
 *
 * @throws jose's JWSInvalid, JOSENotSupported or JOSEAlgNotAllowed
 */
export function parseCompactJws(token: string, algorithms: readonly string[]): CompactJws {
  const segments = token.split('.');
  if (segments.length !== 3) throw new errors.JWSInvalid('Invalid Compact JWS');
  const [encodedHeader, encodedPayload, encodedSignature] = segments as [string, string, string];
  const header = parseHeader(encodedHeader);
  const b64 = checkCrit(header);
  const { alg } = header;
  if (typeof alg !== 'string' || alg === '') {
    throw new errors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing or invalid');
  }
  if (!algorithms.includes(alg))
    throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  return {
    header,
    alg,
    b64,
    signingInput: `${encodedHeader}.${encodedPayload}`,
    encodedPayload,
    encodedSignature,
  };
}

const signatureOptions = (algorithm: Algorithm): SignatureOptions | undefined =>
  algorithm.saltLength !== undefined
    ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength }
    : algorithm.keyType === 'ec'
      ? { dsaEncoding: 'ieee-p1363' }
      : undefined;

/** The process's crypto thread, started at the first signature; idle, it keeps nothing alive. */
const cryptoThread = createCryptoThread();

/**
 * Checks the signature of a parsed JWS with a key of its algorithm, then
 * refuses an unencoded payload as jose's `jwtVerify` does: after the
 * signature (RFC 7519 §7.2 wants the payload base64url-encoded).
 *
 * @throws jose's JWSSignatureVerificationFailed or JWTInvalid; TypeError when the key is of another algorithm;
 *   CryptoThreadError when the thread that verifies is not there
 */
export async function verifyCompactJws(jws: CompactJws, key: JwsKey): Promise<void> {
  if (key.alg !== jws.alg || key.type !== 'public') throw new TypeError(`the key is not a public ${jws.alg} key`);
  const algorithm = ALGORITHMS.get(jws.alg)!;
  if (!BASE64URL.test(jws.encodedPayload)) throw new errors.JWSInvalid('The payload is not a valid base64url string');
  const signature = decodeSegment(jws.encodedSignature, 'signature');
  // A DER-encoded or padded ECDSA signature is not R || S of the curve's size (RFC 7518 §3.4).
  if (algorithm.signatureBytes !== undefined && signature.length !== algorithm.signatureBytes) {
    throw new errors.JWSSignatureVerificationFailed();
  }
  let verified: boolean;
  try {
    verified = await cryptoThread.verify(
      algorithm.hash,
      jws.signingInput,
      key.key,
      jws.encodedSignature,
      signatureOptions(algorithm),
    );
  } catch (cause) {
    // A thread that stopped says nothing of the token: that is the gateway's fault, not a bad signature.
    if (cause instanceof CryptoThreadError) throw cause;
    throw new errors.JWSSignatureVerificationFailed(undefined, { cause });
  }
  if (!verified) throw new errors.JWSSignatureVerificationFailed();
  if (!jws.b64) throw new errors.JWTInvalid('JWTs MUST NOT use unencoded payload');
}

/** `{"alg":"none"}`: the header under which jose validates a claims set alone. */
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/**
 * The claims of a verified JWS, judged by jose's own claim validation
 * (`UnsecuredJWT.decode` runs the very checks `jwtVerify` runs after the
 * signature): a JSON object, then `iss`, `aud`, required claims, `nbf`, `exp`
 * with the clock tolerance. Only ever called with a payload whose signature held.
 *
 * @throws jose's JWTInvalid, JWTClaimValidationFailed or JWTExpired
 */
export function verifiedClaims(jws: CompactJws, options: JWTClaimVerificationOptions): JWTPayload {
  return UnsecuredJWT.decode(`${UNSECURED_HEADER}.${jws.encodedPayload}.`, options).payload;
}

/**
 * Signs payloads (JSON text) as compact JWS under one protected header, encoded
 * once, with a private key of the header's algorithm.
 *
 * @throws TypeError when the key is not a private key of `header.alg`
 */
export function createJwsSigner(
  key: JwsKey,
  header: { readonly alg: string; readonly [name: string]: unknown },
): (payload: string) => Promise<string> {
  if (key.type !== 'private' || key.alg !== header.alg)
    throw new TypeError(`the key is not a private ${header.alg} key`);
  const algorithm = ALGORITHMS.get(key.alg)!;
  const options = signatureOptions(algorithm);
  const encodedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
  return async (payload) => {
    const input = `${encodedHeader}.${Buffer.from(payload).toString('base64url')}`;
    return `${input}.${await cryptoThread.sign(algorithm.hash, input, key.key, options)}`;
  };
}
