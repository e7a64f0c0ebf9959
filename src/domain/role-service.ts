import { GatewayError, notFound } from '../errors.js';
import type { AuditContext, AuditTrail } from './audit.js';
import { declarativeRoleIsReadOnly, type DeclarativeSource } from './origin.js';
import { BUILT_IN_ROLES, isBuiltInRole, parseRole, type Role, type StoredRole } from './roles.js';

export interface RoleStore {
  list(): Promise<StoredRole[]>;
  get(name: string): Promise<StoredRole | undefined>;
  /** @throws GatewayError ALREADY_EXISTS when the name is taken */
  create(role: StoredRole): Promise<void>;
  upsert(role: StoredRole): Promise<void>;
  /** @throws GatewayError FAILED_PRECONDITION when a mapping uses the role */
  remove(name: string): Promise<void>;
  /** Inserts the built-in roles that are missing; leaves existing rows alone. */
  ensure(roles: readonly Role[]): Promise<void>;
}

const builtInIsReadOnly = (name: string) =>
  new GatewayError('FAILED_PRECONDITION', `role ${JSON.stringify(name)} is built in and cannot be changed or deleted`);

/** A role as the audit trail records it: its fields, without where it is stored from. */
const plain = (role: Role | undefined) =>
  role ? { name: role.name, description: role.description, permissions: role.permissions } : null;

/** The admin use cases of `/v1/roles`. */
export function createRoleService(store: RoleStore, audit: AuditTrail) {
  const recordChange = (
    context: AuditContext,
    before: Role | undefined,
    after: Role | undefined,
    source?: DeclarativeSource,
  ) =>
    audit.record({
      action: !before ? 'role.create' : after ? 'role.update' : 'role.delete',
      outcome: 'applied',
      ...context,
      details: { before: plain(before), after: plain(after), ...(source ? { source } : {}) },
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
      await store.create({ ...role, origin: 'IMPERATIVE' });
      await recordChange(context, undefined, role);
    },

    async update(name: string, input: unknown, context: AuditContext): Promise<void> {
      const role = parseRole(name, input);
      if (isBuiltInRole(name)) throw builtInIsReadOnly(name);
      const before = await store.get(name);
      if (before?.origin === 'DECLARATIVE') throw declarativeRoleIsReadOnly(name);
      await store.upsert({ ...role, origin: 'IMPERATIVE' });
      await recordChange(context, before, role);
    },

    async remove(name: string, context: AuditContext): Promise<void> {
      if (isBuiltInRole(name)) throw builtInIsReadOnly(name);
      const before = await store.get(name);
      if (!before) throw notFound(`role ${JSON.stringify(name)} not found`);
      if (before.origin === 'DECLARATIVE') throw declarativeRoleIsReadOnly(name);
      await store.remove(name);
      await recordChange(context, before, undefined);
    },

    /** Stores a role declared in a file (docs/reference.md §6.5), already validated, as DECLARATIVE. */
    async applyDeclarative(role: Role, context: AuditContext, source: DeclarativeSource): Promise<void> {
      const before = await store.get(role.name);
      await store.upsert({ ...role, origin: 'DECLARATIVE' });
      await recordChange(context, before, role, source);
    },

    /**
     * Deletes a declarative role whose document left the files.
     *
     * @throws GatewayError FAILED_PRECONDITION when a mapping still uses it
     */
    async removeDeclarative(name: string, context: AuditContext): Promise<void> {
      const before = await store.get(name);
      if (before?.origin !== 'DECLARATIVE') return;
      await store.remove(name);
      await recordChange(context, before, undefined);
    },

    ensureBuiltIns: () => store.ensure(BUILT_IN_ROLES),
  };
}

export type RoleService = ReturnType<typeof createRoleService>;
