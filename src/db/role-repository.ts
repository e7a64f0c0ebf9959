import type { RoleDirectory } from '../domain/m2m-config-service.js';
import type { RoleStore } from '../domain/role-service.js';
import type { Origin } from '../domain/origin.js';
import type { Permissions, Role, StoredRole } from '../domain/roles.js';
import { GatewayError } from '../errors.js';
import { isForeignKeyViolation, isUniqueViolation } from './database-errors.js';
import type { Database } from './prisma.js';

const toRole = (row: { name: string; description: string; permissions: unknown; origin: Origin }): StoredRole => ({
  name: row.name,
  description: row.description,
  permissions: row.permissions as Permissions,
  origin: row.origin,
});

const toRow = (role: Role & { origin?: Origin }) => ({
  name: role.name,
  description: role.description,
  permissions: role.permissions,
  origin: role.origin ?? 'IMPERATIVE',
});

export function createRoleRepository(db: Database): RoleStore & RoleDirectory {
  return {
    async list() {
      return (await db.role.findMany({ orderBy: { name: 'asc' } })).map(toRole);
    },

    async get(name) {
      const row = await db.role.findUnique({ where: { name } });
      return row ? toRole(row) : undefined;
    },

    async create(role) {
      try {
        await db.role.create({ data: toRow(role) });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new GatewayError('ALREADY_EXISTS', `role ${JSON.stringify(role.name)} already exists`);
        }
        throw error;
      }
    },

    async upsert(role) {
      await db.role.upsert({ where: { name: role.name }, create: toRow(role), update: toRow(role) });
    },

    async remove(name) {
      try {
        await db.role.deleteMany({ where: { name } });
      } catch (error) {
        if (!isForeignKeyViolation(error)) throw error;
        const users = await db.m2mMapping.findMany({
          where: { roleName: name },
          distinct: ['configId'],
          select: { configId: true },
        });
        throw new GatewayError(
          'FAILED_PRECONDITION',
          `role ${JSON.stringify(name)} is used by the mappings of machine-to-machine configs ${users.map((u) => u.configId).join(', ')}`,
        );
      }
    },

    async ensure(roles) {
      await db.role.createMany({ data: roles.map(toRow), skipDuplicates: true });
    },
  };
}
