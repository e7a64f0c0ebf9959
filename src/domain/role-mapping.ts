import RE2 from 're2';
import { messageOf } from '../errors.js';
import type { FlatClaims } from './claims.js';
import type { RoleMapping } from './m2m-config.js';

export const MAX_VALUE_EXPRESSION_LENGTH = 1024;

/**
 * Compiles a mapping's valueExpression so that it must match a claim value
 * whole: `^(?:expr)$` (SPEC §3.5, Δ: StackRox matches substrings, so there
 * `sample-repo` also matches `evil-sample-repo`).
 *
 * The bare expression is compiled first: only a pattern that is valid on its
 * own can be wrapped safely (`a)|(b` would otherwise escape the anchors).
 *
 * @throws Error with RE2's reason when the expression is not valid RE2
 */
export function compileValueExpression(expression: string): RE2 {
  new RE2(expression, 'u');
  return new RE2(`^(?:${expression})$`, 'u');
}

/** Why an expression cannot be used, or undefined when it can. */
export function valueExpressionProblem(expression: string): string | undefined {
  if (expression === '') return 'is empty';
  if (expression.length > MAX_VALUE_EXPRESSION_LENGTH) {
    return `is longer than ${MAX_VALUE_EXPRESSION_LENGTH} characters`;
  }
  try {
    compileValueExpression(expression);
    return undefined;
  } catch (error) {
    return `is not a valid RE2 expression: ${messageOf(error)}`;
  }
}

export interface CompiledMapping {
  readonly key: string;
  readonly matcher: RE2;
  readonly role: string;
}

/** Compiles a stored config's mappings once, for every exchange that uses it. */
export const compileMappings = (mappings: readonly RoleMapping[]): CompiledMapping[] =>
  mappings.map(({ key, valueExpression, role }) => ({ key, matcher: compileValueExpression(valueExpression), role }));

/**
 * The union of the roles of every mapping that applies: one whose expression
 * matches the whole of at least one value of its claim (SPEC §3.5). StackRox's
 * `resolveRolesForClaims`, anchored.
 *
 * @returns role names in mapping order, each once
 */
export function resolveRoles(mappings: readonly CompiledMapping[], claims: FlatClaims): string[] {
  const roles = new Set<string>();
  for (const { key, matcher, role } of mappings) {
    if (roles.has(role)) continue;
    if (claims.get(key)?.some((value) => matcher.test(value))) roles.add(role);
  }
  return [...roles];
}
