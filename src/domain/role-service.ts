import { GatewayError, notFound } from '../errors.js';
import type { AuditContext, AuditTrail } from './audit.js';
import { BUILT_IN_ROLES, isBuiltInRole, parseRole, type Role } from './roles.js';

export interface RoleStore {
  list(): Promise<Role[]>;
  get(name: string): Promise<Role | undefined>;
  /** @throws GatewayError ALREADY_EXISTS when the name is taken */
  create(role: Role): Promise<void>;
  upsert(role: Role): Promise<void>;
  /** @throws GatewayError FAILED_PRECONDITION when a mapping uses the role */
  remove(name: string): Promise<void>;
  /** Inserts the built-in roles that are missing; leaves existing rows alone. */
  ensure(roles: readonly Role[]): Promise<void>;
}

const builtInIsReadOnly = (name: string) =>
  new GatewayError('FAILED_PRECONDITION', `role ${JSON.stringify(name)} is built in and cannot be changed or deleted`);

/** The admin use cases of `/v1/roles`. */
export function createRoleService(store: RoleStore, audit: AuditTrail) {
  const recordChange = (context: AuditContext, before: Role | undefined, after: Role | undefined) =>
    audit.record({
      action: !before ? 'role.create' : after ? 'role.update' : 'role.delete',
      outcome: 'applied',
      ...context,
      details: { before: before ?? null, after: after ?? null },
    });

  return {
    list: () => store.list(),

    async get(name: string): Promise<Role> {
      const role = await store.get(name);
      if (!role) throw notFound(`role ${JSON.stringify(name)} not found`);
      return role;
    },

    async create(name: string, input: unknown, context: AuditContext): Promise<void> {
      const role = parseRole(name, input);
      if (isBuiltInRole(name)) throw new GatewayError('ALREADY_EXISTS', `role ${JSON.stringify(name)} already exists`);
      await store.create(role);
      await recordChange(context, undefined, role);
    },

    async update(name: string, input: unknown, context: AuditContext): Promise<void> {
      const role = parseRole(name, input);
      if (isBuiltInRole(name)) throw builtInIsReadOnly(name);
      const before = await store.get(name);
      await store.upsert(role);
      await recordChange(context, before, role);
    },

    async remove(name: string, context: AuditContext): Promise<void> {
      if (isBuiltInRole(name)) throw builtInIsReadOnly(name);
      const before = await store.get(name);
      if (!before) throw notFound(`role ${JSON.stringify(name)} not found`);
      await store.remove(name);
      await recordChange(context, before, undefined);
    },

    ensureBuiltIns: () => store.ensure(BUILT_IN_ROLES),
  };
}

export type RoleService = ReturnType<typeof createRoleService>;
