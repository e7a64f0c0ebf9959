import { GatewayError } from '../errors.js';
import type { Origin } from './origin.js';
import { Problems, isJsonObject } from './problems.js';
import { ACCESS_LEVELS, RESOURCES, type AccessLevel } from './resources.js';

export { ACCESS_LEVELS, RESOURCES, type AccessLevel };

export type Permissions = Readonly<Record<string, AccessLevel>>;

export interface Role {
  readonly name: string;
  readonly description: string;
  readonly permissions: Permissions;
}

/** A role as stored: made through the API, or applied from a file (docs/reference.md §6.5). */
export interface StoredRole extends Role {
  readonly origin: Origin;
}

export const NONE_ROLE = 'None';
export const ADMIN_ROLE = 'Admin';

const everyResource = (level: (resource: string) => AccessLevel): Permissions =>
  Object.fromEntries(RESOURCES.map((resource) => [resource, level(resource)]));

/** Present on first start (docs/reference.md §2); they can be neither changed nor deleted. */
export const BUILT_IN_ROLES: readonly Role[] = [
  {
    name: ADMIN_ROLE,
    description: 'For users: use it to provide read and write access to all the resources',
    permissions: everyResource(() => 'READ_WRITE_ACCESS'),
  },
  {
    name: 'Analyst',
    description: 'For users: use it to give read-only access to all the resources except Access',
    permissions: everyResource((resource) => (resource === 'Access' ? 'NO_ACCESS' : 'READ_ACCESS')),
  },
  {
    name: 'Continuous Integration',
    description: 'For automation: use it for CI pipelines that check images and policies',
    permissions: { Detection: 'READ_ACCESS', Image: 'READ_WRITE_ACCESS' },
  },
  {
    name: NONE_ROLE,
    description: 'For users: use it to provide no read and write access to any resource',
    permissions: {},
  },
];

const builtInNames = new Set(BUILT_IN_ROLES.map((role) => role.name));

export const isBuiltInRole = (name: string): boolean => builtInNames.has(name);

export const MAX_ROLE_NAME_LENGTH = 128;
const MAX_DESCRIPTION_LENGTH = 1024;
const knownResources = new Set<string>(RESOURCES);

function roleNameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'name is empty';
  if (name.length > MAX_ROLE_NAME_LENGTH) return `name is longer than ${MAX_ROLE_NAME_LENGTH} characters`;
  if (name !== name.trim() || /\p{Cc}/u.test(name)) {
    return 'name has surrounding spaces or control characters';
  }
  return undefined;
}

/**
 * Validates a role written to `/v1/roles/{name}`.
 *
 * @param name the role name from the path
 * @param input the request body; its `name`, when set, must equal the path's
 * @throws GatewayError INVALID_ARGUMENT listing every problem
 */
export function parseRole(name: string, input: unknown): Role {
  const problems = new Problems();
  const nameProblem = roleNameProblem(name);
  if (nameProblem) problems.add(nameProblem);
  if (!isJsonObject(input)) throw new GatewayError('INVALID_ARGUMENT', 'invalid role: body must be a JSON object');

  if (input.name !== undefined && input.name !== '' && input.name !== name) {
    problems.add(`name ${JSON.stringify(input.name)} in the body differs from ${JSON.stringify(name)} in the path`);
  }
  const description = input.description ?? '';
  if (typeof description !== 'string') problems.add('description must be a string');
  else if (description.length > MAX_DESCRIPTION_LENGTH) {
    problems.add(`description is longer than ${MAX_DESCRIPTION_LENGTH} characters`);
  }

  const permissions: Record<string, AccessLevel> = {};
  const rawPermissions = input.permissions ?? {};
  if (!isJsonObject(rawPermissions)) {
    problems.add('permissions must be an object from resource to access level');
  } else {
    for (const [resource, level] of Object.entries(rawPermissions)) {
      if (!knownResources.has(resource)) problems.add(`permissions: unknown resource ${JSON.stringify(resource)}`);
      const access = toAccessLevel(level);
      if (access === undefined) {
        problems.add(`permissions.${resource}: access must be one of ${ACCESS_LEVELS.join(', ')}`);
      } else {
        permissions[resource] = access;
      }
    }
  }
  problems.throwIfAny('role');
  return { name, description: description as string, permissions };
}

/** Accepts the enum name or, as protojson does, its number. */
function toAccessLevel(value: unknown): AccessLevel | undefined {
  if (typeof value === 'number') return ACCESS_LEVELS[value];
  return ACCESS_LEVELS.find((level) => level === value);
}

const rank = (level: AccessLevel | undefined): number => (level ? ACCESS_LEVELS.indexOf(level) : 0);

/** Whether the union of the roles' permissions grants `level` on `resource`. */
export function grants(roles: readonly Role[], resource: string, level: AccessLevel): boolean {
  return roles.some((role) => rank(role.permissions[resource]) >= rank(level));
}
