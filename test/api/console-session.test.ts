import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import request from 'supertest';
import { startFakeIssuer } from '../fixtures/fake-issuer.js';
import { startFakeOidcProvider, type FakeOidcProvider } from '../fixtures/fake-oidc-provider.js';
import { query } from '../fixtures/sql.js';
import { createTestCa } from '../fixtures/test-ca.js';
import {
  ADMIN_AUTH,
  ADMIN_PASSWORD,
  errorBody,
  startTestGateway,
  trustIssuer,
  type TestGateway,
} from '../fixtures/test-gateway.js';

let gateway: TestGateway;
let provider: FakeOidcProvider;
let ssoConfigId: string;
const logLines: string[] = [];

beforeAll(async () => {
  const ca = await createTestCa();
  provider = await startFakeOidcProvider(ca);
  gateway = await startTestGateway(
    {
      ...ssoSettings(),
    },
    { ca, logger: pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) }) },
  );
  ({ id: ssoConfigId } = await trustIssuer(gateway, provider.issuer, {
    audience: provider.clientId,
    sub: 'alice',
    role: 'Admin',
  }));
});

afterAll(async () => {
  await gateway.close();
  await provider.close();
  await gateway.database.drop();
});

/** UI_OIDC_* for the fake provider. */
const ssoSettings = () => ({
  UI_OIDC_ISSUER: provider.issuer,
  UI_OIDC_CLIENT_ID: provider.clientId,
  UI_OIDC_CLIENT_SECRET: provider.clientSecret,
});

/** Runs `test` against another gateway on the same database and CA, with these settings. */
async function withGateway(env: Record<string, string>, test: (other: TestGateway) => Promise<void>) {
  const other = await startTestGateway(env, { ca: gateway.ca, database: gateway.database });
  try {
    await test(other);
  } finally {
    await other.close();
  }
}

/** `name=value` of each Set-Cookie, with its attributes. */
function setCookies(res: request.Response): Map<string, string> {
  const headers = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  return new Map(headers.map((header) => [header.slice(0, header.indexOf('=')), header]));
}

const cookieValue = (header: string | undefined) => header?.slice(header.indexOf('=') + 1).split(';')[0];

async function signIn(password = ADMIN_PASSWORD) {
  const res = await request(gateway.app).post('/ui/session').send({ password });
  const token = cookieValue(setCookies(res).get('m2m-session'));
  return { res, token, cookie: `m2m-session=${token}`, csrf: res.body.csrfToken as string };
}

/** Follows the identity provider's redirect as a browser would, trusting the test CA. */
const providerRedirect = (url: string) =>
  new Promise<string>((resolve, reject) => {
    https
      .get(url, { ca: gateway.ca.pem }, (res) => {
        res.resume();
        resolve(res.headers.location ?? `no redirect: HTTP ${res.statusCode}`);
      })
      .on('error', reject);
  });

/** The whole single sign-on as a browser does it: start, the provider's redirect back, the callback. */
async function singleSignOn() {
  const start = await request(gateway.app).get('/ui/sso/start').expect(303);
  const transaction = cookieValue(setCookies(start).get('m2m-sso'));
  const back = new URL(await providerRedirect(start.headers.location!));
  const callback = await request(gateway.app)
    .get(`${back.pathname}${back.search}`)
    .set('Cookie', `m2m-sso=${transaction}`)
    .expect(303);
  return { start, back, callback, session: cookieValue(setCookies(callback).get('m2m-session')) };
}

describe('the admin console', () => {
  it('is served at /ui with a strict Content-Security-Policy and no inline script', async () => {
    await request(gateway.app).get('/ui').expect(301).expect('Location', '/ui/');
    const page = await request(gateway.app).get('/ui/').expect(200).expect('Content-Type', /html/);
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/https?:\/\//);
    const script = await request(gateway.app).get('/ui/assets/console.js').expect(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
    await request(gateway.app).get('/ui/assets/../../package.json').expect(404);
  });

  it('answers GET /ui/session with 200 whether or not anyone is signed in', async () => {
    await request(gateway.app).get('/ui/session').expect(200, { signedIn: false, sso: true });
    const res = await request(gateway.app)
      .get('/ui/session')
      .set('Cookie', 'm2m-session=not.a.token')
      .expect(200, { signedIn: false, sso: true });
    expect(setCookies(res).get('m2m-session')).toMatch(/Max-Age=0/);
  });
});

describe('password sign-in', () => {
  it('puts the minted token in an HttpOnly, SameSite=Strict cookie, never in the answer', async () => {
    const { res, token } = await signIn();
    expect(res.status).toBe(200);
    expect(setCookies(res).get('m2m-session')).toMatch(
      /^m2m-session=[\w-]+\.[\w-]+\.[\w-]+; Path=\/; Max-Age=3600; SameSite=Strict; HttpOnly$/,
    );
    expect(JSON.stringify(res.body)).not.toContain(token!);
    expect(res.body).toEqual({
      signedIn: true,
      sso: true,
      method: 'password',
      user: { id: 'admin', name: 'admin' },
      roles: ['Admin'],
      access: 'READ_WRITE_ACCESS',
      expiresAt: expect.any(String),
      csrfToken: expect.stringMatching(/^[\w-]{43}$/),
    });
    expect(decodeJwt(token!)).toMatchObject({ sub: 'admin', aud: ['m2m-gateway-console'], roles: ['Admin'] });
  });

  it('refuses a wrong password with 401, on the same budget of guesses as Basic', async () => {
    await withGateway({}, async (guesses) => {
      for (let attempt = 0; attempt < 10; attempt += 1) {
        await request(guesses.app)
          .post('/ui/session')
          .send({ password: `guess-${attempt}` })
          .expect(401, errorBody(16, 'the password is wrong'));
      }
      await request(guesses.app).post('/ui/session').send({ password: 'guess' }).expect(429);
      await request(guesses.app).get('/v1/auth/status').set('Authorization', 'Basic YWRtaW46Z3Vlc3M=').expect(429);
      await request(guesses.app).post('/ui/session').send({}).expect(400);
    });
    // Ten deliberately slow password checks (scrypt, 128 MiB): on a busy machine they take longer than jest's default.
  }, 120_000);

  it('lets the session read, and write only with its CSRF token', async () => {
    const { cookie, csrf } = await signIn();
    await request(gateway.app).get('/v1/auth/m2m').set('Cookie', cookie).expect(200);
    const issuer = await startFakeIssuer(gateway.ca);
    try {
      const config = {
        config: {
          type: 'GENERIC',
          issuer: issuer.issuer,
          tokenExpirationDuration: '5m',
          mappings: [{ key: 'sub', valueExpression: 'x', role: 'Admin' }],
        },
      };
      const denied = errorBody(7, "this request needs the session's X-CSRF-Token header");
      await request(gateway.app).post('/v1/auth/m2m').set('Cookie', cookie).send(config).expect(403, denied);
      await request(gateway.app)
        .post('/v1/auth/m2m')
        .set('Cookie', cookie)
        .set('X-CSRF-Token', csrf.replace(/^./, csrf.startsWith('A') ? 'B' : 'A'))
        .send(config)
        .expect(403, denied);
      await request(gateway.app).post('/v1/keys/rotate').set('Cookie', cookie).expect(403, denied);
      expect(
        await query(gateway.database.url, 'SELECT id FROM m2m_configs WHERE issuer = $1', [issuer.issuer]),
      ).toEqual([]);
      await request(gateway.app)
        .post('/v1/auth/m2m')
        .set('Cookie', cookie)
        .set('X-CSRF-Token', csrf)
        .send(config)
        .expect(200);
      // An Authorization header is the credential when there is one; the cookie is not looked at.
      await request(gateway.app)
        .post('/v1/keys/rotate')
        .set('Cookie', cookie)
        .set('Authorization', ADMIN_AUTH)
        .expect(200);
    } finally {
      await issuer.close();
    }
  });

  it('signs out by removing the cookie (with the CSRF token); the token itself lives until it expires', async () => {
    const { cookie, csrf, token } = await signIn();
    await request(gateway.app).delete('/ui/session').set('Cookie', cookie).expect(403);
    const res = await request(gateway.app)
      .delete('/ui/session')
      .set('Cookie', cookie)
      .set('X-CSRF-Token', csrf)
      .expect(200, { signedIn: false, sso: true });
    expect(setCookies(res).get('m2m-session')).toMatch(/^m2m-session=; Path=\/; Max-Age=0; SameSite=Strict; HttpOnly$/);
    // Stateless tokens cannot be revoked one by one (docs/reference.md §6.6): the cookie is gone, the token is not.
    await request(gateway.app).get('/v1/auth/status').set('Authorization', `Bearer ${token}`).expect(200);
  });

  it('ends every password session when the admin password changes', async () => {
    const { cookie } = await signIn();
    try {
      await withGateway({ ADMIN_PASSWORD: 'another-admin-password-9876543210' }, async (changed) => {
        await request(changed.app).get('/v1/auth/m2m').set('Cookie', cookie).expect(401);
        await request(changed.app)
          .get('/ui/session')
          .set('Cookie', cookie)
          .expect(200, { signedIn: false, sso: false });
      });
    } finally {
      // Put the test password back for the other tests.
      await withGateway({}, async () => undefined);
    }
  });

  it('marks the cookie Secure, with the __Host- prefix, when the gateway is not on localhost', async () => {
    await withGateway({ GATEWAY_ISSUER: 'https://gateway.example.com' }, async (public_) => {
      const res = await request(public_.app).post('/ui/session').send({ password: ADMIN_PASSWORD }).expect(200);
      const header = setCookies(res).get('__Host-m2m-session');
      expect(header).toMatch(/; Path=\/; Max-Age=3600; SameSite=Strict; HttpOnly; Secure$/);
      const cookie = `__Host-m2m-session=${cookieValue(header)}`;
      await request(public_.app).get('/v1/auth/m2m').set('Cookie', cookie).expect(200);
      // The plain name is not read where the prefixed one is expected: a cookie set over http cannot pose as it.
      await request(public_.app)
        .get('/v1/auth/m2m')
        .set('Cookie', `m2m-session=${cookieValue(header)}`)
        .expect(401);
    });
  });
});

describe('the console under attack from other sites and hosts', () => {
  it('reads only a cookie named exactly so, once: a name another host could set is not ours', async () => {
    await withGateway({ GATEWAY_ISSUER: 'https://gateway.example.com' }, async (secure) => {
      const res = await request(secure.app).post('/ui/session').send({ password: ADMIN_PASSWORD }).expect(200);
      const token = cookieValue(setCookies(res).get('__Host-m2m-session'));
      await request(secure.app).get('/v1/auth/m2m').set('Cookie', `__Host-m2m-session=${token}`).expect(200);
      // U+00A0 is not whitespace to browsers: "\xA0__Host-…" has no prefix, so any host of the parent domain may set it.
      for (const planted of [`\u00a0__Host-m2m-session=${token}`, `__Host-m2m-session\u00a0=${token}`]) {
        await request(secure.app).get('/v1/auth/m2m').set('Cookie', planted).expect(401);
      }
      // Two of one name: one was planted (e.g. with a longer Path, so sent first); neither is trusted.
      await request(secure.app)
        .get('/v1/auth/m2m')
        .set('Cookie', `__Host-m2m-session=${token}; __Host-m2m-session=${token}`)
        .expect(401);
      await request(secure.app).get('/v1/auth/m2m').set('Cookie', ` \t__Host-m2m-session=${token}\t `).expect(200);
    });
  });

  it('keeps the single sign-on transaction under the __Host- prefix when the gateway is not on localhost', async () => {
    await withGateway(
      {
        GATEWAY_ISSUER: 'https://gateway.example.com',
        ...ssoSettings(),
      },
      async (secure) => {
        const start = await request(secure.app).get('/ui/sso/start').expect(303);
        expect(setCookies(start).get('__Host-m2m-sso')).toMatch(
          /; Path=\/; Max-Age=600; SameSite=Lax; HttpOnly; Secure$/,
        );
      },
    );
  });

  it("never lets another site spend the admin's password guesses", async () => {
    await withGateway({}, async (victim) => {
      for (let attempt = 0; attempt < 12; attempt += 1) {
        // A hidden form or a no-cors fetch: the browser says where it came from, or cannot send JSON.
        await request(victim.app)
          .post('/ui/session')
          .set('Sec-Fetch-Site', attempt % 2 ? 'cross-site' : 'same-site')
          .set('Content-Type', 'application/json')
          .send(JSON.stringify({ password: `guess-${attempt}` }))
          .expect(403, errorBody(7, 'a sign-in must start on this site'));
        await request(victim.app)
          .post('/ui/session')
          .set('Content-Type', 'text/plain')
          .send(JSON.stringify({ password: `guess-${attempt}` }))
          .expect(400, errorBody(3, 'a sign-in is sent as application/json'));
      }
      // Basic credentials a browser was made to send from another site (a navigation to admin:guess@…) neither.
      for (let attempt = 0; attempt < 12; attempt += 1) {
        await request(victim.app)
          .get('/v1/auth/status')
          .set('Sec-Fetch-Site', 'cross-site')
          .set('Authorization', `Basic ${Buffer.from(`admin:guess-${attempt}`).toString('base64')}`)
          .expect(403, errorBody(7, 'a password must not be sent from another site'));
      }
      await request(victim.app)
        .post('/ui/session')
        .set('Sec-Fetch-Site', 'same-origin')
        .send({ password: ADMIN_PASSWORD })
        .expect(200);
    });
  });

  it('never lets another site spend the single sign-on budget', async () => {
    await withGateway(
      {
        ...ssoSettings(),
      },
      async (victim) => {
        for (let attempt = 0; attempt < 31; attempt += 1) {
          // <img src=…/ui/sso/start> on another site, and callbacks that carry no transaction.
          await request(victim.app).get('/ui/sso/start').set('Sec-Fetch-Site', 'cross-site').expect(403);
          await request(victim.app).get('/ui/sso/callback?code=x&state=y').expect(303);
        }
        await request(victim.app).get('/ui/sso/start').set('Sec-Fetch-Site', 'none').expect(303);
      },
    );
  });
});

describe('single sign-on', () => {
  it('signs in through the provider with PKCE, and the ID token is exchanged through the configs', async () => {
    provider.subject = 'alice';
    const { start, back, callback, session } = await singleSignOn();
    const authorization = provider.authorizations.at(-1)!;
    expect(authorization.get('code_challenge_method')).toBe('S256');
    expect(authorization.get('redirect_uri')).toBe('http://localhost:8080/ui/sso/callback');
    expect(setCookies(start).get('m2m-sso')).toMatch(/; Path=\/; Max-Age=600; SameSite=Lax; HttpOnly$/);
    expect(back.searchParams.get('state')).toBe(authorization.get('state'));
    expect(provider.tokenRequests.at(-1)!.get('code_verifier')).toMatch(/^[\w-]{43,128}$/);
    expect(callback.headers.location).toBe('/ui/');
    expect(setCookies(callback).get('m2m-sso')).toMatch(/Max-Age=0/);
    expect(decodeJwt(session!)).toMatchObject({ sub: `sso:${ssoConfigId}:alice`, roles: ['Admin'] });

    const status = await request(gateway.app).get('/ui/session').set('Cookie', `m2m-session=${session}`).expect(200);
    expect(status.body).toMatchObject({ signedIn: true, method: 'sso', roles: ['Admin'], access: 'READ_WRITE_ACCESS' });
    const audit = await request(gateway.app).get(`/v1/audit?configId=${ssoConfigId}`).set('Authorization', ADMIN_AUTH);
    expect(audit.body.events[0]).toMatchObject({ action: 'exchange', outcome: 'minted' });
  });

  it('is refused when no config gives the subject a role, and then leaves no session', async () => {
    provider.subject = 'mallory';
    try {
      const { callback, session } = await singleSignOn();
      // A code, which the page words itself: a link cannot make the real sign-in page say anything else.
      expect(callback.headers.location).toBe('/ui/#/sign-in?error=refused');
      expect(session).toBeUndefined();
    } finally {
      provider.subject = 'alice';
    }
  });

  it('refuses a callback without its transaction, or with another state, before any token request', async () => {
    const requestsBefore = provider.tokenRequests.length;
    const start = await request(gateway.app).get('/ui/sso/start').expect(303);
    const back = new URL(await providerRedirect(start.headers.location!));
    const alone = await request(gateway.app).get(`${back.pathname}${back.search}`).expect(303);
    expect(alone.headers.location).toBe('/ui/#/sign-in?error=expired');

    back.searchParams.set('state', 'forged');
    const transaction = cookieValue(setCookies(start).get('m2m-sso'));
    const forged = await request(gateway.app)
      .get(`${back.pathname}${back.search}`)
      .set('Cookie', `m2m-sso=${transaction}`)
      .expect(303);
    expect(forged.headers.location).toBe('/ui/#/sign-in?error=provider');
    expect(setCookies(forged).has('m2m-session')).toBe(false);
    expect(provider.tokenRequests.length).toBe(requestsBefore);
  });

  it('logs no token, code, verifier or secret of any sign-in, and no claim of a refused one', async () => {
    provider.subject = 'mallory';
    try {
      await singleSignOn();
    } finally {
      provider.subject = 'alice';
    }
    await singleSignOn();
    const { token } = await signIn();
    const log = logLines.join('\n');
    expect(log).toContain('single sign-on to the console failed');
    const secrets = [
      ...provider.idTokens,
      ...provider.idTokens.map((idToken) => idToken.split('.')[1]!),
      ...provider.tokenRequests.flatMap((form) => [form.get('code')!, form.get('code_verifier')!]),
      provider.clientSecret,
      ADMIN_PASSWORD,
      token!,
    ];
    expect(secrets.filter((secret) => log.includes(secret))).toEqual([]);
  });

  it('is not offered without UI_OIDC_*', async () => {
    await withGateway({}, async (plain) => {
      await request(plain.app).get('/ui/session').expect(200, { signedIn: false, sso: false });
      await request(plain.app)
        .get('/ui/sso/start')
        .expect(404, errorBody(5, 'single sign-on is not set up (UI_OIDC_ISSUER)'));
    });
  });
});

describe('console data', () => {
  it('lists the published signing keys, newest first, the active one marked', async () => {
    await request(gateway.app).post('/v1/keys/rotate').set('Authorization', ADMIN_AUTH).expect(200);
    const { body } = await request(gateway.app).get('/v1/keys').set('Authorization', ADMIN_AUTH).expect(200);
    expect(body.keys.length).toBeGreaterThanOrEqual(2);
    expect(body.keys[0]).toEqual({
      kid: expect.any(String),
      alg: 'ES256',
      createdAt: expect.any(String),
      active: true,
    });
    expect(body.keys.slice(1).every((key: { active: boolean }) => !key.active)).toBe(true);
    const { body: jwks } = await request(gateway.app).get('/.well-known/jwks.json');
    expect(body.keys.map((key: { kid: string }) => key.kid).sort()).toEqual(
      jwks.keys.map((key: { kid: string }) => key.kid).sort(),
    );
  });

  it("reports each issuer's last discovery and JWKS fetch, its key ids and its last failure", async () => {
    const issuer = await startFakeIssuer(gateway.ca);
    try {
      const { id } = await trustIssuer(gateway, issuer.issuer);
      await request(gateway.app)
        .post('/v1/auth/m2m/exchange')
        .send({ idToken: await issuer.sign({ sub: 'ci-bot' }) })
        .expect(200);
      const { body } = await request(gateway.app).get('/v1/issuers').set('Authorization', ADMIN_AUTH).expect(200);
      expect(body.issuers.find((entry: { issuer: string }) => entry.issuer === issuer.issuer)).toEqual({
        issuer: issuer.issuer,
        configIds: [id],
        discovery: { at: expect.any(String), ok: true },
        jwks: { at: expect.any(String), ok: true, keyIds: issuer.publicKeys().map((key) => key.kid) },
        lastFailure: null,
      });
      await request(gateway.app).get('/v1/issuers').expect(401);
    } finally {
      await issuer.close();
    }
  });
});
