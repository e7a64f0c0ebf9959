/**
 * A throwaway OpenID provider for trying the gateway out on one machine:
 * HTTPS on 127.0.0.1 with its own CA (written to .data/local-issuer/ca.pem for
 * ISSUER_CA_FILE), and a plain-HTTP minting endpoint that signs an ID token
 * with whatever claims the query string gives:
 *
 *   curl 'http://127.0.0.1:8444/token?sub=ci-bot&repository=octo-org/app'
 *
 * For local use only: anyone who can reach the minting port gets tokens.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { startFakeIssuer } from '../test/fixtures/fake-issuer.js';
import { createTestCa } from '../test/fixtures/test-ca.js';

const MINT_PORT = Number(process.env.LOCAL_ISSUER_MINT_PORT ?? 8444);
const caDir = path.resolve('.data', 'local-issuer');

const ca = await createTestCa();
await mkdir(caDir, { recursive: true });
const caFile = path.join(caDir, 'ca.pem');
await copyFile(ca.file, caFile);
const issuer = await startFakeIssuer(ca, { algs: ['ES256'], port: Number(process.env.LOCAL_ISSUER_PORT ?? 8443) });

http
  .createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/token') {
      res.writeHead(404).end('try /token?sub=...\n');
      return;
    }
    const claims = Object.fromEntries(url.searchParams);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${await issuer.sign(claims)}\n`);
  })
  .listen(MINT_PORT, '127.0.0.1');

process.stdout.write(
  `issuer:      ${issuer.issuer}\n` +
    `CA file:     ${caFile}   (start the gateway with ISSUER_CA_FILE=${path.relative(process.cwd(), caFile)})\n` +
    `mint tokens: curl 'http://127.0.0.1:${MINT_PORT}/token?sub=ci-bot'\n`,
);
