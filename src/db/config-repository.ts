import type { ConfigStore } from '../domain/m2m-config-service.js';
import { issuerTaken } from '../domain/m2m-config-service.js';
import type { Condition, PolicyTest, StoredM2mConfig } from '../domain/m2m-config.js';
import { invalidArgument } from '../errors.js';
import { isForeignKeyViolation, isUniqueViolation } from './database-errors.js';
import type { Database } from './prisma.js';

const withMappings = { mappings: { orderBy: { position: 'asc' } } } as const;

type ConfigRow = Awaited<ReturnType<Database['m2mConfig']['findMany']>>[number] & {
  mappings: { key: string; valueExpression: string; roleName: string }[];
};

const toConfig = (row: ConfigRow): StoredM2mConfig => ({
  id: row.id,
  type: row.type,
  tokenExpirationDuration: row.tokenExpirationDuration,
  mappings: row.mappings.map((m) => ({ key: m.key, valueExpression: m.valueExpression, role: m.roleName })),
  issuer: row.issuer,
  audience: row.audience,
  conditions: row.conditions as unknown as Condition[],
  maxTokenAge: row.maxTokenAge,
  singleUse: row.singleUse,
  tests: row.tests as unknown as PolicyTest[],
  incarnation: row.incarnation,
  origin: row.origin,
});

export function createConfigRepository(db: Database): ConfigStore {
  return {
    async list() {
      const rows = await db.m2mConfig.findMany({
        include: withMappings,
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      return rows.map(toConfig);
    },

    async get(id) {
      const row = await db.m2mConfig.findUnique({ where: { id }, include: withMappings });
      return row ? toConfig(row) : undefined;
    },

    async findByIssuerAndAudience(issuer, audience) {
      const row = await db.m2mConfig.findUnique({
        where: { issuer_audience: { issuer, audience } },
        include: withMappings,
      });
      return row ? toConfig(row) : undefined;
    },

    /** The config row and all its mappings are replaced in one transaction. */
    async save(config) {
      const fields = {
        type: config.type,
        tokenExpirationDuration: config.tokenExpirationDuration,
        issuer: config.issuer,
        audience: config.audience,
        conditions: config.conditions as unknown as object[],
        maxTokenAge: config.maxTokenAge,
        singleUse: config.singleUse,
        tests: config.tests as unknown as object[],
        incarnation: config.incarnation,
        origin: config.origin,
      };
      try {
        await db.$transaction([
          db.m2mConfig.upsert({ where: { id: config.id }, create: { id: config.id, ...fields }, update: fields }),
          db.m2mMapping.deleteMany({ where: { configId: config.id } }),
          db.m2mMapping.createMany({
            data: config.mappings.map((m, position) => ({
              configId: config.id,
              position,
              key: m.key,
              valueExpression: m.valueExpression,
              roleName: m.role,
            })),
          }),
        ]);
      } catch (error) {
        if (isUniqueViolation(error)) throw issuerTaken(config.issuer, config.audience);
        if (isForeignKeyViolation(error))
          throw invalidArgument('invalid machine-to-machine config: a mapped role no longer exists');
        throw error;
      }
    },

    async remove(id) {
      await db.m2mConfig.deleteMany({ where: { id } });
    },
  };
}
