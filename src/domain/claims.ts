/** A verified payload as the mappings see it: key → its values as strings (SPEC §3.4). */
export type FlatClaims = ReadonlyMap<string, readonly string[]>;

/** Nested objects are flattened this deep and no deeper (SPEC §3.4). */
export const MAX_CLAIM_DEPTH = 8;
/** A bound on the work one token can cause in role matching: values across all keys. */
export const MAX_CLAIM_VALUES = 1000;

export class TooManyClaimsError extends Error {
  override readonly name = 'TooManyClaimsError';
}

const scalarText = (value: unknown): string | undefined => {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
      // Δ: their JSON text, so `run_number` 42 can be matched as "42".
      return JSON.stringify(value);
    default:
      return undefined;
  }
};

/**
 * Flattens a verified payload: strings → [v]; numbers and booleans → their
 * JSON text; arrays → their scalar elements in order, without duplicates;
 * null → absent; nested objects → `parent.child` keys, to depth 8.
 *
 * @throws TooManyClaimsError past MAX_CLAIM_VALUES values
 */
export function flattenClaims(payload: Readonly<Record<string, unknown>>): Map<string, string[]> {
  const claims = new Map<string, string[]>();
  let count = 0;
  const add = (key: string, values: string[]) => {
    count += values.length;
    if (count > MAX_CLAIM_VALUES) throw new TooManyClaimsError(`more than ${MAX_CLAIM_VALUES} claim values`);
    claims.set(key, values);
  };
  const visit = (prefix: string, object: Readonly<Record<string, unknown>>, depth: number) => {
    for (const [name, value] of Object.entries(object)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      if (Array.isArray(value)) {
        const values = [...new Set(value.map(scalarText).filter((v) => v !== undefined))];
        if (values.length > 0) add(key, values);
      } else if (typeof value === 'object' && value !== null) {
        if (depth < MAX_CLAIM_DEPTH) visit(key, value as Record<string, unknown>, depth + 1);
      } else {
        const text = scalarText(value);
        if (text !== undefined) add(key, [text]);
      }
    }
  };
  visit('', payload, 1);
  return claims;
}
