import type { AuditContext, AuditTrail } from '../domain/audit.js';
import { formatDuration } from '../domain/go-duration.js';
import type { KeyRing, StoredSigningKey } from './signing-keys.js';

/** The actor of automatic rotations in the audit trail; users are `admin` or `sso:…`. */
export const SYSTEM_ACTOR = 'system';

export interface KeyRotationDeps {
  readonly keyRing: Pick<KeyRing, 'rotate' | 'rotateIfOlderThan' | 'jwks'>;
  /** Every stored key, published or not. */
  readonly storedKeys: () => Promise<StoredSigningKey[]>;
  readonly audit: AuditTrail;
  /** SIGNING_KEY_ROTATION in milliseconds; 0 never rotates by itself. */
  readonly maxKeyAgeMs: number;
}

/** A published signing key as `GET /v1/keys` lists it; `active` keys sign, the others only verify. */
export interface PublishedSigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly createdAt: string;
  readonly active: boolean;
}

/** Key rotation on request and by age, each recorded in the audit trail as `keys.rotate`. */
export function createKeyRotation(deps: KeyRotationDeps) {
  return {
    /** `GET /v1/keys`: the keys the JWKS publishes, newest first. */
    async list(): Promise<PublishedSigningKey[]> {
      const published = new Set(deps.keyRing.jwks().keys.map((key) => key.kid));
      return (await deps.storedKeys())
        .filter((key) => published.has(key.kid))
        .sort((a, b) => +b.createdAt - +a.createdAt)
        .map((key) => ({
          kid: key.kid,
          alg: key.alg,
          createdAt: key.createdAt.toISOString(),
          active: key.retiredAt === null,
        }));
    },

    /** `POST /v1/keys/rotate`: a new signing key now. */
    async rotate(context: AuditContext): Promise<string> {
      const kid = await deps.keyRing.rotate();
      await deps.audit.record({
        action: 'keys.rotate',
        outcome: 'applied',
        ...context,
        details: { kid, rotation: 'requested' },
      });
      return kid;
    },

    /**
     * The background job's check, on every replica: rotates when the newest
     * key of this replica's algorithm is SIGNING_KEY_ROTATION old. The key
     * ring decides again under the cluster-wide key lock, so however many
     * replicas find the key old at once, one rotates and one record is written.
     *
     * @returns the new kid, or undefined when no rotation was due
     */
    async rotateIfDue(): Promise<string | undefined> {
      if (deps.maxKeyAgeMs <= 0) return undefined;
      const kid = await deps.keyRing.rotateIfOlderThan(deps.maxKeyAgeMs);
      if (kid === undefined) return undefined;
      await deps.audit.record({
        action: 'keys.rotate',
        outcome: 'applied',
        actor: SYSTEM_ACTOR,
        details: { kid, rotation: 'automatic', maxKeyAge: formatDuration(deps.maxKeyAgeMs / 1000) },
      });
      return kid;
    },
  };
}

export type KeyRotation = ReturnType<typeof createKeyRotation>;
