/**
 * The floors: the least an exchange can cost. Each parses the JSON body,
 * verifies the ID token against a preloaded key, checks `iss` and `exp`, and
 * signs an access token with ES256; nothing else.
 *
 * - `jose`: an Express app, jose for both (WebCrypto, on libuv's thread pool);
 * - `http-jose`: the same on a bare node:http server, without Express;
 * - `node-crypto`: a bare node:http server, node:crypto `verify` and `sign` on
 *   preloaded KeyObjects, synchronously on the main thread.
 *
 * Usage: tsx bench/floor-server.ts <jose|http-jose|node-crypto> <port> <issuer> <issuer public JWK, JSON>
 */
import { createPublicKey, generateKeyPairSync, sign, verify, type JsonWebKeyInput, type KeyObject } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { SignJWT, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose';

const [kind, port, issuer, jwk] = process.argv.slice(2) as [string, string, string, string];
const publicJwk = JSON.parse(jwk) as JWK;
const ready = () => process.stdout.write('ready\n');
// An orderly exit, so that `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));

/**
 * A bare node:http server: the body collected, `exchange` answers it, anything
 * thrown is a 401. A synchronous `exchange` is answered in the same tick.
 */
function serveBare(exchange: (body: string) => string | Promise<string>): void {
  http
    .createServer((req, res) => {
      const chunks: Buffer[] = [];
      const answer = (json: string) => res.writeHead(200, { 'content-type': 'application/json' }).end(json);
      const refuse = () => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid"}');
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        let result: string | Promise<string>;
        try {
          result = exchange(Buffer.concat(chunks).toString());
        } catch {
          refuse();
          return;
        }
        if (typeof result === 'string') answer(result);
        else result.then(answer, refuse);
      });
    })
    .listen(Number(port), '127.0.0.1', ready);
}

if (kind === 'jose' || kind === 'http-jose') {
  const issuerKey = await importJWK(publicJwk, publicJwk.alg);
  const { privateKey } = await generateKeyPair('ES256');
  const exchange = async (idToken: unknown) => {
    const { payload } = await jwtVerify(idToken as string, issuerKey, { issuer, algorithms: [publicJwk.alg!] });
    const iat = Math.floor(Date.now() / 1000);
    const accessToken = await new SignJWT({ sub: payload.sub, iat, exp: iat + 300, roles: ['Analyst'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'floor', typ: 'JWT' })
      .sign(privateKey);
    return { accessToken };
  };
  if (kind === 'jose') {
    express()
      .use(express.json())
      .post('/v1/auth/m2m/exchange', async (req, res) => {
        try {
          res.json(await exchange(req.body.idToken));
        } catch {
          res.status(401).json({ error: 'invalid' });
        }
      })
      .listen(Number(port), '127.0.0.1', ready);
  } else {
    serveBare(async (body) => JSON.stringify(await exchange((JSON.parse(body) as { idToken: string }).idToken)));
  }
} else if (kind === 'node-crypto') {
  if (publicJwk.alg !== 'RS256') throw new Error('the node-crypto floor verifies RS256');
  const issuerKey: KeyObject = createPublicKey({ key: publicJwk as JsonWebKeyInput['key'], format: 'jwk' });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'floor', typ: 'JWT' })).toString('base64url');
  serveBare((body) => {
    const token = (JSON.parse(body) as { idToken: string }).idToken;
    const [encodedHeader, encodedPayload, signature] = token.split('.') as [string, string, string];
    const alg = (JSON.parse(Buffer.from(encodedHeader, 'base64url').toString()) as { alg?: unknown }).alg;
    if (alg !== 'RS256') throw new Error('alg');
    const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`);
    if (!verify('sha256', signed, issuerKey, Buffer.from(signature, 'base64url'))) throw new Error('signature');
    const payload = JSON.parse(Buffer.from(encodedPayload, 'base64url').toString()) as Record<string, unknown>;
    const iat = Math.floor(Date.now() / 1000);
    if (payload.iss !== issuer || typeof payload.exp !== 'number' || payload.exp <= iat) throw new Error('claims');
    const claims = { sub: payload.sub, iat, exp: iat + 300, roles: ['Analyst'] };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const accessSignature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return JSON.stringify({ accessToken: `${input}.${accessSignature.toString('base64url')}` });
  });
} else {
  throw new Error('floor kind: jose, http-jose or node-crypto');
}
