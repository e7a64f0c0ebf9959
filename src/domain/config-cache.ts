import type { ActiveConfig, ConfigLookup } from './exchange.js';
import { NANOS_PER_SECOND, parseGoDuration } from './go-duration.js';
import { tokenLifetimeSeconds, type StoredM2mConfig } from './m2m-config.js';
import { compilePolicy } from './policy.js';
import type { Role } from './roles.js';
import { messageOf } from '../errors.js';

/** A stored config that could not be made ready for exchanges, and why. */
export interface UnusableConfig {
  readonly config: StoredM2mConfig;
  readonly reason: string;
}

const NO_POLICY = compilePolicy({ conditions: [], mappings: [] });

/** A stored config made ready for exchanges: an error here never stops the others from loading. */
export function activate(config: StoredM2mConfig): ActiveConfig {
  try {
    return {
      config,
      policy: compilePolicy(config),
      lifetimeSeconds: tokenLifetimeSeconds(config),
      maxTokenAgeSeconds:
        config.maxTokenAge === '' ? undefined : parseGoDuration(config.maxTokenAge) / NANOS_PER_SECOND,
    };
  } catch (error) {
    return { config, policy: NO_POLICY, lifetimeSeconds: 0, maxTokenAgeSeconds: undefined, unusable: messageOf(error) };
  }
}

/**
 * The configs held in memory for the exchange path (no database query per
 * exchange). `replace` swaps in a fresh snapshot; configs whose stored form
 * did not change keep their compiled mappings. A config that cannot be
 * compiled is kept as unusable, so that it is refused, not skipped.
 */
export function createConfigCache() {
  let byIssuer = new Map<string, ActiveConfig[]>();
  let byId = new Map<string, ActiveConfig>();
  let fingerprints = new Map<string, string>();

  return {
    configsOf: (issuer: string): readonly ActiveConfig[] => byIssuer.get(issuer) ?? [],
    byId: (id: string) => byId.get(id),
    get size() {
      return byId.size;
    },
    /** The issuers of every config held. */
    issuers: (): ReadonlySet<string> => new Set(byIssuer.keys()),

    /** @returns the configs that this replace found unusable (each once, until it changes), for the log */
    replace(configs: readonly StoredM2mConfig[]): UnusableConfig[] {
      const nextById = new Map<string, ActiveConfig>();
      const nextFingerprints = new Map<string, string>();
      const unusable: UnusableConfig[] = [];
      for (const config of configs) {
        const fingerprint = JSON.stringify(config);
        const previous = byId.get(config.id);
        let active = previous;
        if (!active || fingerprints.get(config.id) !== fingerprint) {
          active = activate(config);
          if (active.unusable !== undefined) unusable.push({ config, reason: active.unusable });
        }
        nextById.set(config.id, active);
        nextFingerprints.set(config.id, fingerprint);
      }
      byId = nextById;
      fingerprints = nextFingerprints;
      byIssuer = new Map();
      for (const active of nextById.values()) {
        const ofIssuer = byIssuer.get(active.config.issuer);
        if (ofIssuer) ofIssuer.push(active);
        else byIssuer.set(active.config.issuer, [active]);
      }
      return unusable;
    },
  } satisfies ConfigLookup & Record<string, unknown>;
}

export type ConfigCache = ReturnType<typeof createConfigCache>;

/** The roles held in memory, to give a gateway token's roles their permissions on the admin API. */
export function createRoleCache() {
  let byName = new Map<string, Role>();
  return {
    get: (name: string) => byName.get(name),
    replace(roles: readonly Role[]): void {
      byName = new Map(roles.map((role) => [role.name, role]));
    },
  };
}

export type RoleCache = ReturnType<typeof createRoleCache>;
