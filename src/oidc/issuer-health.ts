import type { IssuerFetchDetail } from './id-token-verifier.js';

interface FetchOutcome {
  readonly at: Date;
  readonly ok: boolean;
}

interface IssuerRecord {
  discovery?: FetchOutcome;
  jwks?: FetchOutcome & { readonly keyIds: readonly string[] };
  lastFailure?: { readonly at: Date; readonly reason: string };
}

/** One issuer as `GET /v1/issuers` answers it (docs/reference.md §6.6, issuer health). */
export interface IssuerHealth {
  readonly issuer: string;
  readonly configIds: readonly string[];
  readonly discovery: { readonly at: string | null; readonly ok: boolean | null };
  readonly jwks: { readonly at: string | null; readonly ok: boolean | null; readonly keyIds: readonly string[] };
  readonly lastFailure: { readonly at: string; readonly reason: string } | null;
}

/**
 * What this replica saw of each issuer's discovery and JWKS fetches: when,
 * whether they worked, the key ids it holds, and the last failure. Kept in
 * memory per replica, like the keys themselves.
 */
export function createIssuerHealth(now: () => Date) {
  const records = new Map<string, IssuerRecord>();
  return {
    record(issuer: string, document: 'discovery' | 'jwks', ok: boolean, detail: IssuerFetchDetail = {}): void {
      const record = records.get(issuer) ?? {};
      records.set(issuer, record);
      const at = now();
      if (document === 'discovery') record.discovery = { at, ok };
      // A failed fetch leaves the keys of the last good one in use.
      else record.jwks = { at, ok, keyIds: ok ? (detail.keyIds ?? []) : (record.jwks?.keyIds ?? []) };
      if (!ok) record.lastFailure = { at, reason: detail.reason ?? 'unknown' };
    },

    /** Every issuer of `configs`, in issuer order; issuers no config names any more are forgotten. */
    report(configs: readonly { readonly id: string; readonly issuer: string }[]): IssuerHealth[] {
      const idsByIssuer = new Map<string, string[]>();
      for (const { id, issuer } of configs) idsByIssuer.set(issuer, [...(idsByIssuer.get(issuer) ?? []), id]);
      for (const issuer of records.keys()) if (!idsByIssuer.has(issuer)) records.delete(issuer);
      return [...idsByIssuer]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([issuer, configIds]) => {
          const { discovery, jwks, lastFailure } = records.get(issuer) ?? {};
          return {
            issuer,
            configIds,
            discovery: { at: discovery?.at.toISOString() ?? null, ok: discovery?.ok ?? null },
            jwks: { at: jwks?.at.toISOString() ?? null, ok: jwks?.ok ?? null, keyIds: jwks?.keyIds ?? [] },
            lastFailure: lastFailure ? { at: lastFailure.at.toISOString(), reason: lastFailure.reason } : null,
          };
        });
    },
  };
}

export type IssuerHealthBoard = ReturnType<typeof createIssuerHealth>;
