import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * The console's session (docs/reference.md §6.6): the minted token itself, in
 * a cookie that scripts cannot read (HttpOnly), that no other site's request
 * carries (SameSite=Strict), and that travels only over TLS (Secure) unless
 * the gateway is on localhost, where browsers have no certificate to offer.
 */
export interface SessionCookies {
  readonly secure: boolean;
  /** The session token the request carries, if any. */
  tokenOf(req: Request): string | undefined;
  set(res: Response, token: string, maxAgeSeconds: number): void;
  clear(res: Response): void;
  /** The short-lived single sign-on transaction (state, nonce, PKCE verifier) between start and callback. */
  transactionOf(req: Request): string | undefined;
  setTransaction(res: Response, value: string, maxAgeSeconds: number): void;
  clearTransaction(res: Response): void;
}

/** The header that carries the CSRF token on console writes. */
export const CSRF_HEADER = 'X-CSRF-Token';

/**
 * The CSRF token of a session: a digest of its token, so only a page that was
 * told it (GET /ui/session, readable by same-origin scripts only) can send it,
 * and every replica can check it without shared state.
 */
export const csrfTokenOf = (sessionToken: string): string =>
  createHash('sha256').update(`m2m-gateway csrf\0${sessionToken}`).digest('base64url');

export function isCsrfTokenOf(sessionToken: string, candidate: string | undefined): boolean {
  if (candidate === undefined) return false;
  const expected = Buffer.from(csrfTokenOf(sessionToken));
  const given = Buffer.from(candidate);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Whether the browser says another site started this request (Fetch Metadata,
 * `Sec-Fetch-Site`): a hidden form, an image, a script's no-cors request.
 * Clients that send no such header (curl, roxctl) are not browsers.
 */
export function startedByAnotherSite(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  return site !== undefined && site !== 'same-origin' && site !== 'none';
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether browsers reach the gateway over TLS: whenever GATEWAY_ISSUER is not plain http on this machine. */
export const needsSecureCookies = (gatewayIssuer: string): boolean => {
  const url = new URL(gatewayIssuer);
  return url.protocol === 'https:' || !LOOPBACK_HOSTS.has(url.hostname);
};

/**
 * The value of cookie `name` in a Cookie header (RFC 6265 §5.4), or undefined
 * when it is missing or sent more than once. Names are compared exactly, with
 * only spaces and tabs around them (§5.2): a wider trim would read a name
 * that another host could set (e.g. U+00A0 before `__Host-`) as ours, and of
 * two cookies of one name, one was planted by someone else.
 */
function cookieValue(header: string | undefined, name: string): string | undefined {
  let value: string | undefined;
  for (const pair of (header ?? '').split(';')) {
    const equals = pair.indexOf('=');
    if (equals < 0 || pair.slice(0, equals).replace(/^[ \t]+|[ \t]+$/g, '') !== name) continue;
    if (value !== undefined) return undefined;
    value = pair.slice(equals + 1).replace(/^[ \t]+|[ \t]+$/g, '');
  }
  return value || undefined;
}

export function createSessionCookies(gatewayIssuer: string): SessionCookies {
  const secure = needsSecureCookies(gatewayIssuer);
  // The __Host- prefix (RFC 6265bis §4.1.3.2) makes browsers refuse the cookie from anything but this host over TLS.
  const sessionName = secure ? '__Host-m2m-session' : 'm2m-session';
  const transactionName = secure ? '__Host-m2m-sso' : 'm2m-sso';
  const flags = secure ? '; Secure' : '';
  const cookie = (name: string, value: string, attributes: string) =>
    `${name}=${value}; ${attributes}; HttpOnly${flags}`;
  return {
    secure,
    tokenOf: (req) => cookieValue(req.get('cookie'), sessionName),
    set: (res, token, maxAgeSeconds) =>
      res.append('Set-Cookie', cookie(sessionName, token, `Path=/; Max-Age=${maxAgeSeconds}; SameSite=Strict`)),
    clear: (res) => res.append('Set-Cookie', cookie(sessionName, '', 'Path=/; Max-Age=0; SameSite=Strict')),
    transactionOf: (req) => cookieValue(req.get('cookie'), transactionName),
    // Lax, not Strict: the identity provider's redirect back is a cross-site navigation, and must carry it.
    // Path=/ because __Host- demands it, and the prefix is what keeps sibling hosts from planting one.
    setTransaction: (res, value, maxAgeSeconds) =>
      res.append('Set-Cookie', cookie(transactionName, value, `Path=/; Max-Age=${maxAgeSeconds}; SameSite=Lax`)),
    clearTransaction: (res) => res.append('Set-Cookie', cookie(transactionName, '', 'Path=/; Max-Age=0; SameSite=Lax')),
  };
}
