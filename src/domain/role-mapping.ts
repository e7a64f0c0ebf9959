import RE2 from 're2';
import { messageOf } from '../errors.js';
import type { FlatClaims } from './claims.js';
import type { RoleMapping } from './m2m-config.js';

export const MAX_VALUE_EXPRESSION_LENGTH = 1024;

/**
 * Compiles expressions into one RE2 set that matches whole values only
 * (anchored at both ends: docs/reference.md §3.5, Δ: StackRox matches substrings, so there
 * `sample-repo` also matches `evil-sample-repo`). Validation and exchanges
 * use this same compiler, so a stored expression always compiles.
 *
 * @throws Error with RE2's reason when an expression is not valid RE2
 */
export const compileWholeValueSet = (expressions: readonly string[]) =>
  new RE2.Set(expressions, 'u', { anchor: 'both' });

/** Why an expression cannot be used, or undefined when it can. */
export function valueExpressionProblem(expression: string): string | undefined {
  if (expression === '') return 'is empty';
  if (expression.length > MAX_VALUE_EXPRESSION_LENGTH) {
    return `is longer than ${MAX_VALUE_EXPRESSION_LENGTH} characters`;
  }
  try {
    compileWholeValueSet([expression]);
    return undefined;
  } catch (error) {
    return `is not a valid RE2 expression: ${messageOf(error)}`;
  }
}

/** A config's mappings, compiled once for every exchange: one RE2 set per claim key. */
export interface CompiledMappings {
  readonly byKey: readonly {
    readonly key: string;
    /** Matches whole values only (compileWholeValueSet). */
    readonly expressions: ReturnType<typeof compileWholeValueSet>;
    /** The role and the mapping's position, per expression of the set. */
    readonly roles: readonly { readonly role: string; readonly position: number }[];
  }[];
}

/** The expressions on one claim key are too large for RE2 as one set, though each compiles alone. */
export class MappingSetError extends Error {
  override readonly name = 'MappingSetError';

  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`the mappings on claim ${JSON.stringify(key)} cannot be compiled together: ${reason}`);
  }
}

/**
 * Compiles a stored config's mappings. Expressions on the same claim key go
 * into one RE2 set, so a claim value is scanned once however many mappings
 * name its key. Validation calls this very function, so that what is stored
 * is exactly what exchanges can compile.
 *
 * @throws MappingSetError when one key's set does not compile
 */
export function compileMappings(mappings: readonly RoleMapping[]): CompiledMappings {
  const groups = new Map<string, { expressions: string[]; roles: { role: string; position: number }[] }>();
  mappings.forEach(({ key, valueExpression, role }, position) => {
    const group = groups.get(key) ?? { expressions: [], roles: [] };
    group.expressions.push(valueExpression);
    group.roles.push({ role, position });
    groups.set(key, group);
  });
  return {
    byKey: [...groups].map(([key, group]) => {
      let expressions;
      try {
        expressions = compileWholeValueSet(group.expressions);
      } catch (error) {
        throw new MappingSetError(key, messageOf(error));
      }
      return { key, expressions, roles: group.roles };
    }),
  };
}

/**
 * The union of the roles of every mapping that applies: one whose expression
 * matches the whole of at least one value of its claim (docs/reference.md §3.5). StackRox's
 * `resolveRolesForClaims`, anchored.
 *
 * @returns role names in mapping order, each once
 */
export function resolveRoles(mappings: CompiledMappings, claims: FlatClaims): string[] {
  const matched: { role: string; position: number }[] = [];
  for (const { key, expressions, roles } of mappings.byKey) {
    const values = claims.get(key);
    if (!values) continue;
    const hits = new Set<number>();
    for (const value of values) for (const index of expressions.match(value)) hits.add(index);
    for (const index of hits) matched.push(roles[index]!);
  }
  matched.sort((a, b) => a.position - b.position);
  return [...new Set(matched.map((m) => m.role))];
}
