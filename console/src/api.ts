// The gateway's admin API as the console uses it: same origin, session cookie, CSRF header on writes.

import type { AccessLevel } from '../../src/domain/resources';

export { ACCESS_LEVELS, RESOURCES } from '../../src/domain/resources';
export type Access = AccessLevel;

export type Session =
  | { signedIn: false; sso: boolean }
  | {
      signedIn: true;
      sso: boolean;
      method: 'password' | 'sso';
      user: { id: string; name: string };
      roles: string[];
      access: Access;
      expiresAt: string;
      csrfToken: string;
    };

export const CONFIG_TYPES = ['GENERIC', 'GITHUB_ACTIONS', 'KUBE_SERVICE_ACCOUNT'] as const;
export type ConfigType = (typeof CONFIG_TYPES)[number];
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

export interface Condition {
  key: string;
  valueExpression: string;
}

export interface Mapping extends Condition {
  role: string;
}

export interface PolicyTest {
  name: string;
  claims: unknown;
  roles: string[];
}

/** A config as sent to the API; `id` and `traits` come back from it. */
export interface ConfigInput {
  id?: string;
  type: ConfigType;
  issuer: string;
  audience: string;
  tokenExpirationDuration: string;
  mappings: Mapping[];
  conditions: Condition[];
  maxTokenAge: string;
  singleUse: boolean;
  tests: PolicyTest[];
}

export interface Config extends ConfigInput {
  id: string;
  traits: { mutabilityMode: string; visibility: string; origin: 'IMPERATIVE' | 'DECLARATIVE' };
}

export interface LintResult {
  problems: string[];
  warnings: { field: string; message: string }[];
}

export interface Explanation {
  decision: 'GRANTED' | 'REFUSED';
  reason: string;
  configId: string;
  steps: { name: string; ok: boolean; detail: string }[];
  claims: Record<string, string[]>;
  unmatchable: string[];
  conditions: (Condition & { matched: boolean; value: string })[];
  mappings: (Mapping & { matched: boolean; value: string })[];
  roles: string[];
  accessToken: Record<string, unknown>;
}

export type ExplainRequest =
  | { idToken: string }
  | { claims: unknown; configId: string }
  | { claims: unknown; config: ConfigInput }
  | { auditEventId: string };

export interface AuditEvent {
  id: string;
  time: string;
  requestId: string;
  action: string;
  actor: string;
  configId: string;
  outcome: string;
  reason: string;
  details: Record<string, unknown>;
}

export const AUDIT_OUTCOMES = ['applied', 'minted', 'refused'] as const;

export interface Role {
  name: string;
  description: string;
  permissions: Record<string, Access>;
}

export interface IssuerHealth {
  issuer: string;
  configIds: string[];
  discovery: { at: string | null; ok: boolean | null };
  jwks: { at: string | null; ok: boolean | null; keyIds: string[] };
  lastFailure: { at: string; reason: string } | null;
}

export interface SigningKey {
  kid: string;
  alg: string;
  createdAt: string;
  active: boolean;
}

let csrfToken = '';
let onUnauthenticated: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called when an admin call answers 401: the session expired or was replaced. */
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

/** An error answer of the gateway; `message` is the server's, safe to show. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== '') headers['X-CSRF-Token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError('The gateway could not be reached. Check your connection and try again.', 0);
  }
  const payload: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const message =
      typeof payload === 'object' && payload !== null && typeof (payload as { message?: unknown }).message === 'string'
        ? (payload as { message: string }).message
        : `The gateway answered ${response.status} ${response.statusText}`.trim();
    if (response.status === 401 && path.startsWith('/v1/')) onUnauthenticated();
    throw new ApiError(message, response.status);
  }
  return payload as T;
}

const segment = encodeURIComponent;

export const api = {
  session: () => request<Session>('GET', '/ui/session'),
  signIn: (password: string) => request<Session>('POST', '/ui/session', { password }),
  signOut: () => request<Session>('DELETE', '/ui/session'),

  configs: () => request<{ configs: Config[] }>('GET', '/v1/auth/m2m'),
  config: (id: string) => request<{ config: Config }>('GET', `/v1/auth/m2m/${segment(id)}`),
  addConfig: (config: ConfigInput) => request<{ config: Config }>('POST', '/v1/auth/m2m', { config }),
  updateConfig: (id: string, config: ConfigInput) =>
    request<object>('PUT', `/v1/auth/m2m/${segment(id)}`, { config: { ...config, id } }),
  deleteConfig: (id: string) => request<object>('DELETE', `/v1/auth/m2m/${segment(id)}`),
  lint: (config: ConfigInput) => request<LintResult>('POST', '/v1/auth/m2m/lint', { config }),
  explain: (input: ExplainRequest) => request<Explanation>('POST', '/v1/auth/m2m/explain', input),

  audit: (query: Record<string, string>) => {
    const search = new URLSearchParams(Object.entries(query).filter(([, value]) => value !== '')).toString();
    return request<{ events: AuditEvent[]; nextPageToken: string }>(
      'GET',
      search === '' ? '/v1/audit' : `/v1/audit?${search}`,
    );
  },

  roles: () => request<{ roles: Role[] }>('GET', '/v1/roles'),
  createRole: (role: Role) => request<object>('POST', `/v1/roles/${segment(role.name)}`, role),
  deleteRole: (name: string) => request<object>('DELETE', `/v1/roles/${segment(name)}`),

  issuers: () => request<{ issuers: IssuerHealth[] }>('GET', '/v1/issuers'),
  keys: () => request<{ keys: SigningKey[] }>('GET', '/v1/keys'),
  rotateKey: () => request<{ kid: string }>('POST', '/v1/keys/rotate'),
};
