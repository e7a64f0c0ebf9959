import type { ActiveConfig, ConfigLookup } from './exchange.js';
import { tokenLifetimeSeconds, type M2mConfig } from './m2m-config.js';
import { compileMappings } from './role-mapping.js';
import type { Role } from './roles.js';

/**
 * The configs held in memory for the exchange path (no database query per
 * exchange). `replace` swaps in a fresh snapshot; configs whose stored form
 * did not change keep their compiled mappings.
 */
export function createConfigCache() {
  let byIssuer = new Map<string, ActiveConfig>();
  let byId = new Map<string, ActiveConfig>();
  let fingerprints = new Map<string, string>();

  return {
    byIssuer: (issuer: string) => byIssuer.get(issuer),
    byId: (id: string) => byId.get(id),
    get size() {
      return byId.size;
    },

    replace(configs: readonly M2mConfig[]): void {
      const nextById = new Map<string, ActiveConfig>();
      const nextFingerprints = new Map<string, string>();
      for (const config of configs) {
        const fingerprint = JSON.stringify(config);
        const previous = byId.get(config.id);
        const active =
          previous && fingerprints.get(config.id) === fingerprint
            ? previous
            : { config, mappings: compileMappings(config.mappings), lifetimeSeconds: tokenLifetimeSeconds(config) };
        nextById.set(config.id, active);
        nextFingerprints.set(config.id, fingerprint);
      }
      byId = nextById;
      fingerprints = nextFingerprints;
      byIssuer = new Map([...nextById.values()].map((active) => [active.config.issuer, active]));
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
