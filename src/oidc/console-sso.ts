import * as oidc from 'openid-client';
import type { ConsoleSsoSettings } from '../config.js';
import type { FetchLike } from './https-client.js';

/** What the browser keeps between the start of a sign-in and the identity provider's answer (in a cookie). */
export interface SsoTransaction {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

/** Why a single sign-on did not end with an ID token: safe to show; the cause goes to the log. */
export class SsoFailed extends Error {
  override readonly name = 'SsoFailed';
}

export interface ConsoleSso {
  /** Where to send the browser (an authorization request with PKCE, RFC 7636), and what to keep until it is back. */
  start(): Promise<{ readonly url: string; readonly transaction: SsoTransaction }>;
  /** The ID token for the authorization response (the callback's query string), checked against the transaction. */
  finish(query: string, transaction: SsoTransaction): Promise<string>;
}

/**
 * The console's single sign-on (docs/reference.md §6.6) with openid-client:
 * authorization code flow with PKCE (S256), `state` and `nonce`, the client
 * secret sent to the token endpoint. The ID token it yields is then exchanged
 * through the gateway's own configs like any other, so this module decides
 * nothing about who may administer. Discovery runs once it succeeds; every
 * request goes through the gateway's outbound client (ISSUER_CA_FILE, proxy,
 * address rules, time and size bounds).
 */
export function createConsoleSso(settings: ConsoleSsoSettings, redirectUri: string, fetch: FetchLike): ConsoleSso {
  let discovered: Promise<oidc.Configuration> | undefined;
  const configuration = () => {
    discovered ??= oidc
      .discovery(new URL(settings.issuer), settings.clientId, settings.clientSecret, undefined, {
        [oidc.customFetch]: fetch,
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw new SsoFailed(`the identity provider could not be discovered`, { cause: error });
      });
    return discovered;
  };

  return {
    async start() {
      const config = await configuration();
      const transaction: SsoTransaction = {
        state: oidc.randomState(),
        nonce: oidc.randomNonce(),
        codeVerifier: oidc.randomPKCECodeVerifier(),
      };
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid',
        response_type: 'code',
        state: transaction.state,
        nonce: transaction.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(transaction.codeVerifier),
        code_challenge_method: 'S256',
      });
      return { url: url.href, transaction };
    },

    async finish(query, transaction) {
      const config = await configuration();
      const callbackUrl = new URL(redirectUri);
      callbackUrl.search = query;
      try {
        const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
          pkceCodeVerifier: transaction.codeVerifier,
          expectedState: transaction.state,
          expectedNonce: transaction.nonce,
          idTokenExpected: true,
        });
        return tokens.id_token!;
      } catch (error) {
        const code = (error as { error?: unknown }).error;
        throw new SsoFailed(
          typeof code === 'string' && /^[\w.-]{1,64}$/.test(code)
            ? `the identity provider answered ${code}`
            : 'the identity provider did not sign you in',
          { cause: error },
        );
      }
    },
  };
}
