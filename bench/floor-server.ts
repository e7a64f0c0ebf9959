/**
 * The floor: the least an exchange can cost on this stack. An Express app that
 * only parses the JSON body, verifies the ID token with jose against a
 * preloaded key and signs an access token with jose; nothing else.
 *
 * Usage: tsx bench/floor-server.ts <port> <issuer> <issuer public JWK, JSON>
 */
import express from 'express';
import { SignJWT, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose';

const [port, issuer, jwk] = process.argv.slice(2) as [string, string, string];
const publicJwk = JSON.parse(jwk) as JWK;
const issuerKey = await importJWK(publicJwk, publicJwk.alg);
const { privateKey } = await generateKeyPair('ES256');

express()
  .use(express.json())
  .post('/v1/auth/m2m/exchange', async (req, res) => {
    try {
      const { payload } = await jwtVerify(req.body.idToken, issuerKey, { issuer, algorithms: [publicJwk.alg!] });
      const iat = Math.floor(Date.now() / 1000);
      const accessToken = await new SignJWT({ sub: payload.sub, iat, exp: iat + 300, roles: ['Analyst'] })
        .setProtectedHeader({ alg: 'ES256', kid: 'floor', typ: 'JWT' })
        .sign(privateKey);
      res.json({ accessToken });
    } catch {
      res.status(401).json({ error: 'invalid' });
    }
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
