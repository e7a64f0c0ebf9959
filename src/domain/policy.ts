import { InvalidClaimsError, flattenClaims, type FlatClaims } from './claims.js';
import type { Condition, M2mConfig, RoleMapping } from './m2m-config.js';
import { compileMappings, compileWholeValueSet, resolveRoles, type CompiledMappings } from './role-mapping.js';

/** A config's conditions and mappings, compiled once (the same compiler validates them). */
export interface CompiledPolicy {
  readonly conditions: readonly (Condition & { readonly matcher: ReturnType<typeof compileWholeValueSet> })[];
  readonly mappings: CompiledMappings;
}

/**
 * @throws MappingSetError when one claim key's mappings do not compile as one set
 * @throws Error with RE2's reason when a condition does not compile
 */
export function compilePolicy(config: Pick<M2mConfig, 'conditions' | 'mappings'>): CompiledPolicy {
  return {
    conditions: config.conditions.map((condition) => ({
      ...condition,
      matcher: compileWholeValueSet([condition.valueExpression]),
    })),
    mappings: compileMappings(config.mappings),
  };
}

/** The first value of `key` that `test` accepts; a key that is absent never matches. */
const firstMatching = (claims: FlatClaims, key: string, test: (value: string) => boolean) =>
  claims.get(key)?.find(test);

/** The first condition that no value of its claim matches as a whole, or undefined when all hold. */
export function failedCondition(policy: CompiledPolicy, claims: FlatClaims): Condition | undefined {
  return policy.conditions.find(
    ({ key, matcher }) => firstMatching(claims, key, (value) => matcher.test(value)) === undefined,
  );
}

/**
 * The roles a policy gives these claims: none unless every condition holds
 * (they are AND-ed), then the union of every mapping that applies (an OR of
 * grants, as in StackRox).
 */
export function resolvePolicyRoles(policy: CompiledPolicy, claims: FlatClaims): string[] {
  return failedCondition(policy, claims) ? [] : resolveRoles(policy.mappings, claims);
}

export interface ConditionOutcome extends Condition {
  readonly matched: boolean;
  /** The value that matched, or '' when none did. */
  readonly value: string;
}

export interface MappingOutcome extends RoleMapping {
  readonly matched: boolean;
  readonly value: string;
}

/** Every condition and mapping with whether and on which value it matched (explain). */
export interface PolicyOutcome {
  readonly conditions: readonly ConditionOutcome[];
  readonly mappings: readonly MappingOutcome[];
  readonly roles: readonly string[];
}

/** The whole story of a policy on these claims, for explain; exchanges use resolvePolicyRoles. */
export function explainPolicy(
  config: Pick<M2mConfig, 'conditions' | 'mappings'>,
  policy: CompiledPolicy,
  claims: FlatClaims,
): PolicyOutcome {
  const conditions = policy.conditions.map(({ key, valueExpression, matcher }) => {
    const value = firstMatching(claims, key, (candidate) => matcher.test(candidate));
    return { key, valueExpression, matched: value !== undefined, value: value ?? '' };
  });
  const holds = conditions.every((condition) => condition.matched);
  const mappings = config.mappings.map((mapping) => {
    const matcher = compileWholeValueSet([mapping.valueExpression]);
    const value = holds ? firstMatching(claims, mapping.key, (candidate) => matcher.test(candidate)) : undefined;
    return { ...mapping, matched: value !== undefined, value: value ?? '' };
  });
  return { conditions, mappings, roles: holds ? resolveRoles(policy.mappings, claims) : [] };
}

const sameRoles = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((role, index) => role === [...b].sort()[index]);

const listed = (roles: readonly string[]) => `[${roles.map((role) => JSON.stringify(role)).join(', ')}]`;

/**
 * Runs a config's stored tests against its own policy: what each claim set
 * resolves to must be exactly the roles the test names ([] = refused).
 *
 * @returns one line per failing test, with expected and actual roles
 */
export function failingPolicyTests(config: Pick<M2mConfig, 'conditions' | 'mappings' | 'tests'>): string[] {
  if (config.tests.length === 0) return [];
  const policy = compilePolicy(config);
  return config.tests.flatMap((test) => {
    let actual: string[];
    try {
      actual = resolvePolicyRoles(policy, flattenClaims(test.claims).claims);
    } catch (error) {
      if (!(error instanceof InvalidClaimsError)) throw error;
      return [`test ${JSON.stringify(test.name)}: its claims are refused (${error.message})`];
    }
    return sameRoles(actual, test.roles)
      ? []
      : [`test ${JSON.stringify(test.name)}: expected ${listed(test.roles)}, got ${listed(actual)}`];
  });
}
