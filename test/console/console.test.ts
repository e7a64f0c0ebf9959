import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import request from 'supertest';
import { startFakeIssuer, type FakeIssuer } from '../fixtures/fake-issuer.js';
import { startFakeOidcProvider, type FakeOidcProvider } from '../fixtures/fake-oidc-provider.js';
import { createTestCa } from '../fixtures/test-ca.js';
import {
  ADMIN_AUTH,
  ADMIN_PASSWORD,
  startTestGateway,
  trustIssuer,
  type TestGateway,
} from '../fixtures/test-gateway.js';

/**
 * The admin console in a real browser (docs/reference.md §6.6): Debian's
 * Chromium driven by playwright-core, against the real gateway, a fake
 * GitHub issuer and a fake OpenID provider over HTTPS.
 */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.resolve('docs', 'console');
const chromiumPresent = existsSync(CHROMIUM);

if (!chromiumPresent) {
  // CI installs Chromium (.ci/run), so there a missing browser is a failure, never a silent skip.
  if (process.env.CI) throw new Error(`the browser tests need ${CHROMIUM}: apt-get install -y chromium`);
  process.stderr.write(
    `\nSKIPPED: the admin console's browser tests: ${CHROMIUM} is missing (apt-get update && apt-get install -y chromium)\n\n`,
  );
}

const describeInBrowser = chromiumPresent ? describe : describe.skip;

describeInBrowser('the admin console in Chromium', () => {
  let gateway: TestGateway;
  let server: Server;
  let base: string;
  let provider: FakeOidcProvider;
  let github: FakeIssuer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    const ca = await createTestCa();
    provider = await startFakeOidcProvider(ca);
    github = await startFakeIssuer(ca, { algs: ['RS256'] });
    // The port comes first: GATEWAY_ISSUER, and so the redirect URI, must name it.
    server = await new Promise<Server>((resolve) => {
      const probe = http.createServer();
      probe.listen(0, '127.0.0.1', () => resolve(probe));
    });
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    base = `http://localhost:${port}`;
    gateway = await startTestGateway(
      {
        GATEWAY_ISSUER: base,
        GITHUB_ACTIONS_ISSUERS: github.issuer,
        UI_OIDC_ISSUER: provider.issuer,
        UI_OIDC_CLIENT_ID: provider.clientId,
        UI_OIDC_CLIENT_SECRET: provider.clientSecret,
      },
      { ca },
    );
    server = gateway.app.listen(port, '127.0.0.1');
    await trustIssuer(gateway, provider.issuer, { audience: provider.clientId, sub: 'alice', role: 'Admin' });
    await mkdir(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // Playwright gives every launch a fresh, empty profile (--user-data-dir) of its own.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    await gateway?.close();
    await provider?.close();
    await github?.close();
    await gateway?.database.drop();
  });

  beforeEach(async () => {
    // The fake provider's certificate is from the test CA, which the browser does not know; the gateway checks it.
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
    // Well inside jest's 30 s, so that a missing element fails with its locator rather than a timeout.
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    problems = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning')
        problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  });

  afterEach(async () => {
    await context.close();
    expect(problems).toEqual([]);
  });

  /** No serious or critical accessibility violation on the page as it is now (axe-core). */
  async function expectAccessible() {
    await page.evaluate(axe.source);
    // A string, not a function: the test's TypeScript knows no DOM.
    const violations = await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((result) =>
      result.violations
        .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
        .map((violation) => violation.id + ': ' + violation.nodes.map((node) => node.target.join(' ')).join(', ')))`);
    expect(violations).toEqual([]);
  }

  const screenshot = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

  async function signInWithPassword() {
    await page.goto(`${base}/ui/`);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Configs' }).waitFor()).resolves.toBeUndefined();
  }

  it('signs in with the password into a session cookie that scripts cannot read', async () => {
    await page.goto(`${base}/ui`);
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await expectAccessible();
    await screenshot('sign-in');
    await signInWithPassword();

    const [session] = await context.cookies();
    expect(session).toMatchObject({
      name: 'm2m-session',
      httpOnly: true,
      sameSite: 'Strict',
      secure: false,
      path: '/',
    });
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(await page.evaluate('localStorage.length + sessionStorage.length')).toBe(0);
    expect(page.url()).not.toContain(session!.value);
    await expectAccessible();
    await screenshot('configs');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    await expect(page.getByText('The session token stays valid until it expires').waitFor()).resolves.toBeUndefined();
    expect(await context.cookies()).toEqual([]);
  });

  it('signs in with single sign-on: authorization code with PKCE, then an exchange through the configs', async () => {
    provider.subject = 'alice';
    await page.goto(`${base}/ui/`);
    await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
    await page.getByRole('heading', { level: 1, name: 'Configs' }).waitFor();
    expect(page.url()).toMatch(new RegExp(`^${base}/ui/`));
    expect(provider.authorizations.at(-1)!.get('code_challenge_method')).toBe('S256');
    expect(provider.tokenRequests.at(-1)!.get('code_verifier')).toBeTruthy();
    await page.getByRole('banner').getByText('alice').waitFor();
    const [session] = (await context.cookies()).filter((cookie) => cookie.name === 'm2m-session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  });

  it('shows why single sign-on was refused when no config gives a role', async () => {
    provider.subject = 'mallory';
    try {
      await page.goto(`${base}/ui/`);
      await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
      await page.getByRole('alert').filter({ hasText: 'the gateway refused your identity' }).waitFor();
      expect(await context.cookies()).toEqual([]);
      // A link cannot make the real sign-in page say what its author likes.
      await page.goto(`${base}/ui/#/sign-in?error=${encodeURIComponent('Sign in at https://evil.example instead')}`);
      await page.getByRole('alert').filter({ hasText: 'Single sign-on failed. Try again.' }).waitFor();
      expect(await page.getByText('evil.example').count()).toBe(0);
      // Names every object has are no code either.
      await page.goto(`${base}/ui/#/sign-in?error=constructor`);
      await page.getByRole('alert').filter({ hasText: 'Single sign-on failed. Try again.' }).waitFor();
    } finally {
      provider.subject = 'alice';
    }
  });

  it('creates a GitHub config with a condition, warns, and refuses a write that fails a test', async () => {
    await signInWithPassword();
    await page.getByRole('link', { name: 'New config' }).click();
    await page.getByRole('heading', { level: 1, name: 'New config' }).waitFor();
    await page.getByLabel('Type').selectOption('GITHUB_ACTIONS');
    await page.getByLabel('Issuer').fill(github.issuer);
    await page.getByLabel('Token lifetime').fill('5m');
    await page.getByRole('button', { name: 'Add condition' }).click();
    await page.getByLabel('Condition 1 claim').fill('repository_owner');
    await page.getByLabel('Condition 1 value').fill('octo-org');
    await page.getByRole('button', { name: 'Add mapping' }).click();
    await page.getByLabel('Mapping 1 claim').fill('ref');
    await page.getByLabel('Mapping 1 value').fill('refs/heads/main');
    await page.getByLabel('Mapping 1 role').selectOption('Admin');

    const warnings = page.getByRole('region', { name: 'Warnings' });
    await warnings
      .getByText(/audience/i)
      .first()
      .waitFor();
    await warnings.getByText(/ref/).first().waitFor();

    await page.getByRole('button', { name: 'Add test' }).click();
    await page.getByLabel('Test 1 name').fill('a feature branch deploys');
    await page.getByLabel('Test 1 claims (JSON)').fill('{"repository_owner": "octo-org", "ref": "refs/heads/dev"}');
    await page.getByLabel('Test 1 roles').fill('Admin');
    await expectAccessible();
    await screenshot('config-edit');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').filter({ hasText: 'a feature branch deploys' }).waitFor();
    // The refusal itself is the 400 the browser reports; nothing else may be.
    expect(problems).toEqual([
      'error: Failed to load resource: the server responded with a status of 400 (Bad Request)',
    ]);
    problems = [];
    const stored = await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH);
    expect(stored.body.configs.filter((config: { issuer: string }) => config.issuer === github.issuer)).toEqual([]);

    await page.getByLabel('Test 1 roles').fill('');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { level: 1, name: 'Configs' }).waitFor();
    await page.getByRole('link', { name: github.issuer }).waitFor();
  });

  it('explains a refused exchange from the audit log', async () => {
    const { id } = await trustIssuer(gateway, github.issuer, {
      type: 'GENERIC',
      audience: 'explain-me',
      sub: 'repo:octo-org/app:ref:refs/heads/main',
      role: 'Analyst',
    });
    await request(gateway.app)
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: await github.sign({ sub: 'repo:evil/app:ref:refs/heads/main', aud: 'explain-me' }) })
      .expect(401);
    // A stranger's unsigned word, with a right-to-left override that would turn a marker after it into "(verified)".
    const [header, , signature] = (await github.sign({ sub: 'x', aud: 'explain-me' })).split('.');
    const lie = Buffer.from(
      JSON.stringify({ iss: github.issuer, aud: 'explain-me', sub: 'root\u202e(deifirev)', exp: 4102444800 }),
    );
    await request(gateway.app)
      .post('/v1/auth/m2m/exchange')
      .send({ idToken: `${header}.${lie.toString('base64url')}.${signature}` })
      .expect(401);

    await signInWithPassword();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await page.getByLabel('Config id').fill(id);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const forgedCell = page.getByRole('cell').filter({ has: page.locator('bdi', { hasText: 'deifirev' }) });
    expect(await forgedCell.textContent()).toMatch(/^\(unverified\) root/);
    // Only the refusal whose token verified kept claims to explain.
    expect(await page.getByRole('button', { name: /^Explain event / }).count()).toBe(1);
    await page
      .getByRole('button', { name: /^Explain event / })
      .first()
      .click();
    const steps = page.getByRole('table', { name: 'Steps' });
    await steps.waitFor();
    await steps.getByText('mappings').first().waitFor();
    await page.getByText('REFUSED').first().waitFor();
    await expectAccessible();
    await screenshot('audit');
  });

  it('explains a token pasted into the playground', async () => {
    await signInWithPassword();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Explain' }).click();
    await page.getByRole('heading', { level: 1, name: 'Explain' }).waitFor();
    await page.getByRole('radio', { name: 'ID token' }).check();
    await page
      .getByRole('textbox', { name: 'ID token' })
      .fill(await provider.keys.sign({ sub: 'alice', aud: provider.clientId }));
    await page.getByRole('button', { name: 'Explain', exact: true }).click();
    await page.getByRole('table', { name: 'Steps' }).waitFor();
    await page.getByText('GRANTED').first().waitFor();
    await expectAccessible();
    await screenshot('explain');
  });

  it('rotates the signing key', async () => {
    await signInWithPassword();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Signing keys' }).click();
    const keys = page.getByRole('table', { name: 'Signing keys' });
    await keys.waitFor();
    const before = await keys.getByRole('row').count();
    await page.getByRole('button', { name: 'Rotate signing key' }).click();
    await page.getByRole('status').filter({ hasText: 'Rotated' }).waitFor();
    await keys.getByRole('row').nth(before).waitFor();
    await expectAccessible();
    await screenshot('signing-keys');
  });

  it('shows roles and issuer health', async () => {
    await signInWithPassword();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Roles' }).click();
    await page.getByRole('table', { name: 'Roles' }).getByText('Admin', { exact: true }).waitFor();
    await expectAccessible();
    await screenshot('roles');
    await nav.getByRole('link', { name: 'Issuers' }).click();
    await page.getByRole('table', { name: 'Issuers' }).getByText(provider.issuer).first().waitFor();
    await expectAccessible();
    await screenshot('issuers');
  });

  it('creates a config with the keyboard alone', async () => {
    await signInWithPassword();
    /** Tabs forward until the focused element has this accessible name; fails if it is never reached. */
    async function tabTo(name: string) {
      for (let presses = 0; presses < 80; presses += 1) {
        await page.keyboard.press('Tab');
        const focused = await page.evaluate(`(() => {
          const element = document.activeElement;
          const label = element?.id ? document.querySelector('label[for="' + element.id + '"]')?.textContent : undefined;
          return (element?.getAttribute('aria-label') ?? label ?? element?.textContent ?? '').trim();
        })()`);
        if (focused === name) return;
      }
      throw new Error(`${name} cannot be reached with Tab`);
    }
    const issuer = await startFakeIssuer(gateway.ca);
    try {
      await tabTo('New config');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'New config' }).waitFor();
      await tabTo('Issuer');
      await page.keyboard.type(issuer.issuer);
      await tabTo('Token lifetime');
      await page.keyboard.type('10m');
      await tabTo('Add mapping');
      await page.keyboard.press('Enter');
      await tabTo('Mapping 1 claim');
      await page.keyboard.type('sub');
      await tabTo('Mapping 1 value');
      await page.keyboard.type('keyboard-bot');
      await tabTo('Mapping 1 role');
      await page.keyboard.type('Analyst');
      await tabTo('Save');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: 'Configs' }).waitFor();
      const stored = await request(gateway.app).get('/v1/auth/m2m').set('Authorization', ADMIN_AUTH);
      expect(stored.body.configs.find((config: { issuer: string }) => config.issuer === issuer.issuer)).toMatchObject({
        tokenExpirationDuration: '10m',
        mappings: [{ key: 'sub', valueExpression: 'keyboard-bot', role: 'Analyst' }],
      });
    } finally {
      await issuer.close();
    }
  });
});

if (!chromiumPresent) {
  describe('the admin console in Chromium', () => {
    it.skip(`is skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`, () => undefined);
  });
}
