/**
 * `npm run demo`: the five-minute tour. Starts the gateway on an embedded
 * database in a temporary folder, with a local HTTPS issuer that looks like
 * GitHub Actions (its own throwaway CA), creates a GITHUB_ACTIONS config,
 * mints a GitHub-shaped ID token, exchanges it, and prints every step as the
 * curl command that does it. Everything is removed at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { startGateway } from '../src/gateway.js';
import { startFakeIssuer } from '../test/fixtures/fake-issuer.js';
import { createTestCa } from '../test/fixtures/test-ca.js';

const PASSWORD = 'demo-password';
const say = (text = '') => process.stdout.write(`${text}\n`);
const shell = (command: string) => say(`\n$ ${command}`);

const port = await new Promise<number>((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: free } = probe.address() as AddressInfo;
    probe.close(() => resolve(free));
  });
});
const base = `http://127.0.0.1:${port}`;
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'm2m-gateway-demo-'));
const ca = await createTestCa();
const github = await startFakeIssuer(ca, { path: '/_services/token', algs: ['RS256'] });
const gateway = await startGateway(
  loadConfig({
    DATA_DIR: dataDir,
    PORT: String(port),
    GATEWAY_ISSUER: base,
    ADMIN_PASSWORD: PASSWORD,
    ISSUER_CA_FILE: ca.file,
    ISSUER_ALLOW_PRIVATE_NETWORKS: '127.0.0.1',
    GITHUB_ACTIONS_ISSUERS: github.issuer,
    LOG_LEVEL: 'warn',
  }),
  pino({ level: 'warn' }),
);
const server = gateway.app.listen(port, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));

async function call(method: string, url: string, body?: unknown, auth = true): Promise<unknown> {
  const response = await fetch(`${base}${url}`, {
    method,
    headers: auth ? { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` } : {},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  say(text.length > 600 ? `${text.slice(0, 600)}…` : text);
  if (!response.ok) throw new Error(`${method} ${url} answered ${response.status}`);
  return JSON.parse(text);
}

try {
  say(`m2m-gateway demo: gateway at ${base}, a GitHub Actions look-alike issuer at ${github.issuer}`);
  say('(the issuer is allowed through GITHUB_ACTIONS_ISSUERS, as a GitHub Enterprise Server would be)');

  const config = {
    type: 'GITHUB_ACTIONS',
    issuer: github.issuer,
    audience: 'm2m-gateway',
    tokenExpirationDuration: '15m',
    // Conditions must all hold before any mapping counts: here, only octo-org's repositories.
    conditions: [{ key: 'repository_owner_id', valueExpression: '5' }],
    mappings: [
      { key: 'repository_id', valueExpression: '74', role: 'Continuous Integration' },
      {
        key: 'job_workflow_ref',
        valueExpression: 'octo-org/octo-repo/\\.github/workflows/release\\.yml@refs/heads/main',
        role: 'Analyst',
      },
    ],
  };
  say('\n1. An admin trusts the issuer and maps claims to roles:');
  shell(`curl -s -u admin:${PASSWORD} ${base}/v1/auth/m2m -d '${JSON.stringify({ config })}'`);
  await call('POST', '/v1/auth/m2m', { config });

  say('\n2. A workflow job gets an ID token from its issuer (core.getIDToken("m2m-gateway") on GitHub):');
  const idToken = await github.sign({
    sub: 'repo:octo-org/octo-repo:ref:refs/heads/main',
    aud: 'm2m-gateway',
    repository: 'octo-org/octo-repo',
    repository_id: '74',
    repository_owner: 'octo-org',
    repository_owner_id: '5',
    actor: 'octocat',
    actor_id: '12',
    ref: 'refs/heads/main',
    job_workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
    run_id: '2345',
    run_number: 42,
  });
  say(JSON.stringify(decodeJwt(idToken), null, 2));

  say('\n3. …and trades it for a gateway token:');
  shell(`curl -s ${base}/v1/auth/m2m/exchange -d '{"idToken":"${idToken.slice(0, 24)}…"}'`);
  const { accessToken } = (await call('POST', '/v1/auth/m2m/exchange', { idToken }, false)) as { accessToken: string };
  say('\nThe access token, decoded:');
  say(JSON.stringify(decodeJwt(accessToken), null, 2));

  say('\n4. Downstream services verify it with the gateway keys:');
  shell(`curl -s ${base}/.well-known/jwks.json`);
  await call('GET', '/.well-known/jwks.json', undefined, false);

  say('\n5. And the gateway knows who it is:');
  shell(`curl -s -H "Authorization: Bearer $ACCESS_TOKEN" ${base}/v1/auth/status`);
  const status = await fetch(`${base}/v1/auth/status`, { headers: { authorization: `Bearer ${accessToken}` } });
  say(await status.text());

  say('\n6. A job of another owner is refused, and the caller learns nothing about the policy:');
  const stranger = await github.sign({
    sub: 'repo:evil-org/octo-repo:ref:refs/heads/main',
    aud: 'm2m-gateway',
    repository: 'evil-org/octo-repo',
    repository_id: '74',
    repository_owner: 'evil-org',
    repository_owner_id: '666',
    actor: 'mallory',
    actor_id: '13',
    ref: 'refs/heads/main',
  });
  shell(`curl -s ${base}/v1/auth/m2m/exchange -d '{"idToken":"$STRANGER_TOKEN"}'`);
  await fetch(`${base}/v1/auth/m2m/exchange`, { method: 'POST', body: JSON.stringify({ idToken: stranger }) }).then(
    async (response) => say(await response.text()),
  );

  say('\n7. An admin asks why (explain runs the whole exchange without minting):');
  shell(`curl -s -u admin:${PASSWORD} ${base}/v1/auth/m2m/explain -d '{"idToken":"$STRANGER_TOKEN"}'`);
  const response = await fetch(`${base}/v1/auth/m2m/explain`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
    body: JSON.stringify({ idToken: stranger }),
  });
  const explanation = (await response.json()) as {
    decision: string;
    steps: { name: string; ok: boolean; detail: string }[];
  };
  say(`decision: ${explanation.decision}`);
  for (const step of explanation.steps) say(`  ${step.ok ? 'ok  ' : 'FAIL'}  ${step.name.padEnd(11)} ${step.detail}`);

  say('\n8. The audit trail has it all (a refused exchange keeps its verified claims, so it can be explained later):');
  shell(`curl -s -u admin:${PASSWORD} '${base}/v1/audit?limit=2'`);
  await call('GET', '/v1/audit?limit=2');
  say('\nDone. Next: README.md for running it for real, docs/github-actions.md for a real workflow.');
} finally {
  server.close();
  await gateway.close();
  await github.close();
  await rm(dataDir, { recursive: true, force: true });
}
