import { GatewayError, invalidArgument, notFound } from '../errors.js';
import type { AuditContext, AuditTrail } from './audit.js';
import { lintConfig, type LintWarning } from './lint.js';
import { failingPolicyTests } from './policy.js';
import type { Role } from './roles.js';
import { isJsonObject, type JsonObject } from './problems.js';
import {
  KEPT_WHEN_ABSENT,
  parseM2mConfig,
  trustsTheSame,
  type IssuerPolicy,
  type M2mConfig,
  type M2mConfigFields,
  type StoredM2mConfig,
} from './m2m-config.js';

/** The configs as stored. Writes replace a config and its mappings atomically. */
export interface ConfigStore {
  list(): Promise<StoredM2mConfig[]>;
  get(id: string): Promise<StoredM2mConfig | undefined>;
  findByIssuerAndAudience(issuer: string, audience: string): Promise<StoredM2mConfig | undefined>;
  /** @throws GatewayError ALREADY_EXISTS when another config has the issuer and audience */
  save(config: StoredM2mConfig): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface RoleDirectory {
  list(): Promise<Role[]>;
}

/**
 * Fetches and checks the issuer's discovery document (SPEC §1).
 *
 * @throws GatewayError FAILED_PRECONDITION naming the issuer and the cause
 */
export type DiscoverIssuer = (config: M2mConfigFields) => Promise<void>;

export interface M2mConfigServiceDeps {
  readonly store: ConfigStore;
  readonly audit: AuditTrail;
  readonly roles: RoleDirectory;
  readonly discoverIssuer: DiscoverIssuer;
  readonly issuerPolicy: IssuerPolicy;
  readonly newId: () => string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (id: string): boolean => UUID.test(id);

/** The admin use cases of `/v1/auth/m2m` (StackRox's AuthService M2M RPCs). */
export function createM2mConfigService(deps: M2mConfigServiceDeps) {
  const { store } = deps;

  /** Every problem of a config (INVALID_ARGUMENT), then every stored test it fails (FAILED_PRECONDITION). */
  async function validate(input: unknown): Promise<M2mConfigFields> {
    const roles = new Set((await deps.roles.list()).map((role) => role.name));
    const fields = parseM2mConfig(input, deps.issuerPolicy, (name) => roles.has(name));
    const failures = failingPolicyTests(fields);
    if (failures.length > 0) {
      throw new GatewayError(
        'FAILED_PRECONDITION',
        `the config fails its tests, so it was not stored: ${failures.join('; ')}`,
        {
          problems: failures,
        },
      );
    }
    return fields;
  }

  async function write(config: M2mConfig, context: AuditContext): Promise<void> {
    const holder = await store.findByIssuerAndAudience(config.issuer, config.audience);
    if (holder && holder.id !== config.id) throw issuerTaken(config.issuer, config.audience);
    await deps.discoverIssuer(config);
    const before = await store.get(config.id);
    const incarnation = before && trustsTheSame(before, config) ? before.incarnation : deps.newId();
    await store.save({ ...config, incarnation });
    await deps.audit.record({
      action: before ? 'config.update' : 'config.create',
      outcome: 'applied',
      ...context,
      configId: config.id,
      details: { before: before ?? null, after: config },
    });
  }

  return {
    validate,

    /** What Add would refuse (`problems`), and risky policy it would accept (`warnings`). */
    async lint(input: unknown): Promise<{ problems: readonly string[]; warnings: readonly LintWarning[] }> {
      try {
        const fields = await validate(input);
        return { problems: [], warnings: lintConfig(fields, await deps.roles.list()) };
      } catch (error) {
        if (
          !(error instanceof GatewayError) ||
          (error.code !== 'INVALID_ARGUMENT' && error.code !== 'FAILED_PRECONDITION')
        ) {
          throw error;
        }
        return { problems: error.problems, warnings: [] };
      }
    },
    list: () => store.list(),

    async get(id: string): Promise<M2mConfig> {
      const config = isUuid(id) ? await store.get(id.toLowerCase()) : undefined;
      if (!config) throw notFound(`machine-to-machine config ${JSON.stringify(id)} not found`);
      return config;
    },

    /** Any id in the input is ignored; the new config gets a fresh one. */
    async add(input: unknown, context: AuditContext): Promise<M2mConfig> {
      const config = { ...(await validate(input)), id: deps.newId() };
      await write(config, context);
      return config;
    },

    /** Upsert: an unknown id creates the config under that id. */
    async update(id: string, input: unknown, context: AuditContext): Promise<M2mConfig> {
      if (!isUuid(id)) throw invalidArgument(`id ${JSON.stringify(id)} is not a UUID`);
      const bodyId = isJsonObject(input) ? input.id : undefined;
      if (
        bodyId !== undefined &&
        bodyId !== '' &&
        (typeof bodyId !== 'string' || bodyId.toLowerCase() !== id.toLowerCase())
      ) {
        throw invalidArgument(
          `id ${JSON.stringify(bodyId)} in the body differs from ${JSON.stringify(id)} in the path`,
        );
      }
      const before = await store.get(id.toLowerCase());
      const config = { ...(await validate(before ? keepingAbsentFields(input, before) : input)), id: id.toLowerCase() };
      await write(config, context);
      return config;
    },

    /** Deleting an unknown id succeeds, as in StackRox. */
    async remove(id: string, context: AuditContext): Promise<void> {
      const before = isUuid(id) ? await store.get(id.toLowerCase()) : undefined;
      if (!before) return;
      await store.remove(before.id);
      await deps.audit.record({
        action: 'config.delete',
        outcome: 'applied',
        ...context,
        configId: before.id,
        details: { before, after: null },
      });
    },
  };
}

export type M2mConfigService = ReturnType<typeof createM2mConfigService>;

/**
 * An update's input with the stored value of every optional field it leaves
 * out. StackRox clients rebuild a config from the five fields they know
 * before a PUT; without this, an older client would drop an audience or the
 * conditions, and widen trust by omission. A field present with an empty
 * value still clears it.
 */
function keepingAbsentFields(input: unknown, stored: M2mConfig): unknown {
  if (!isJsonObject(input)) return input;
  const kept: JsonObject = { ...input };
  for (const field of KEPT_WHEN_ABSENT) if (!Object.hasOwn(input, field)) kept[field] = stored[field];
  return kept;
}

export const issuerTaken = (issuer: string, audience: string) =>
  new GatewayError(
    'ALREADY_EXISTS',
    audience === ''
      ? `a machine-to-machine config for issuer ${JSON.stringify(issuer)} already exists`
      : `a machine-to-machine config for issuer ${JSON.stringify(issuer)} and audience ${JSON.stringify(audience)} already exists`,
  );
