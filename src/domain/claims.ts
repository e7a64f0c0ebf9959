import { InexactNumber, mayHoldInexactNumbers, parseJsonExactly } from './json-text.js';
import { isJsonObject } from './problems.js';

/** A verified payload as the mappings see it: key → its values as strings (docs/reference.md §3.4). */
export type FlatClaims = ReadonlyMap<string, readonly string[]>;

export interface FlattenedClaims {
  readonly claims: FlatClaims;
  /**
   * Keys, in payload order, that held a number no string stands for exactly:
   * that number is left out of `claims` (and the key too, if nothing else was
   * left), so it never matches.
   */
  readonly unmatchable: readonly string[];
}

/** Nested objects are flattened this deep and no deeper (docs/reference.md §3.4). */
export const MAX_CLAIM_DEPTH = 8;
/** A bound on the work one token can cause in role matching: values across all keys. */
export const MAX_CLAIM_VALUES = 1000;

/** A verified payload whose claims cannot be read safely; the token is refused with the message. */
export class InvalidClaimsError extends Error {
  override readonly name: string = 'InvalidClaimsError';
}

export class TooManyClaimsError extends InvalidClaimsError {
  override readonly name = 'TooManyClaimsError';
}

/** Two members flatten to one key, e.g. `{"a": {"b": …}}` beside `"a.b"`: neither may silently win. */
export class AmbiguousClaimError extends InvalidClaimsError {
  override readonly name = 'AmbiguousClaimError';

  constructor(readonly key: string) {
    super(`ambiguous claim ${JSON.stringify(key)}`);
  }
}

const NONE: readonly string[] = Object.freeze([]);
const INEXACT = Symbol('inexact');

const scalarText = (value: unknown): string | typeof INEXACT | undefined => {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      // Δ: their JSON text, so `run_number` 42 can be matched as "42". Past 2^53 − 1 one double
      // stands for several integers, and a non-finite one has no JSON text at all.
      return Number.isFinite(value) && (Number.isSafeInteger(value) || !Number.isInteger(value))
        ? String(value)
        : INEXACT;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return value instanceof InexactNumber ? INEXACT : undefined;
    default:
      return undefined;
  }
};

const isNested = (value: unknown): value is Readonly<Record<string, unknown>> =>
  isJsonObject(value) && !(value instanceof InexactNumber);

/**
 * Flattens a verified payload: strings → [v]; numbers and booleans → their
 * JSON text; arrays → their scalar elements in order, without duplicates;
 * null → absent; nested objects → `parent.child` keys, to depth 8. A number
 * that no string stands for exactly is left out and its key reported in
 * `unmatchable`.
 *
 * @param json the JSON text `payload` was parsed from, when there is one (a
 *   JWS payload segment). JSON.parse rounds numbers and only the text says
 *   which it changed; without it numbers are judged by value alone.
 * @throws AmbiguousClaimError when two members flatten to one key, whatever
 *   their values (a null or an empty list still names its key)
 * @throws TooManyClaimsError past MAX_CLAIM_VALUES values
 */
export function flattenClaims(payload: Readonly<Record<string, unknown>>, json?: string): FlattenedClaims {
  const claims = new Map<string, string[]>();
  let unmatchable: string[] | undefined;
  // Keys produced with no value to match (null, [], an inexact number): still taken.
  let valueless: Set<string> | undefined;
  let count = 0;

  const leaf = (key: string, value: unknown) => {
    if (claims.has(key) || valueless?.has(key)) throw new AmbiguousClaimError(key);
    let inexact = false;
    let values: string[];
    if (Array.isArray(value)) {
      const texts = new Set<string>();
      for (const element of value) {
        const text = scalarText(element);
        if (text === INEXACT) inexact = true;
        else if (text !== undefined) texts.add(text);
      }
      values = [...texts];
    } else {
      const text = scalarText(value);
      inexact = text === INEXACT;
      values = typeof text === 'string' ? [text] : [];
    }
    if (inexact) (unmatchable ??= []).push(key);
    if (values.length === 0) {
      (valueless ??= new Set()).add(key);
      return;
    }
    count += values.length;
    if (count > MAX_CLAIM_VALUES) throw new TooManyClaimsError(`more than ${MAX_CLAIM_VALUES} claim values`);
    claims.set(key, values);
  };
  const visit = (prefix: string, object: Readonly<Record<string, unknown>>, depth: number) => {
    for (const [name, value] of Object.entries(object)) {
      // By depth, not by an empty prefix: a member named "" is a segment too, or `{"": {"x": …}}` would pass for `x`.
      const key = depth === 1 ? name : `${prefix}.${name}`;
      if (!isNested(value)) leaf(key, value);
      else if (depth < MAX_CLAIM_DEPTH) visit(key, value, depth + 1);
    }
  };
  visit('', exactly(payload, json), 1);
  return { claims, unmatchable: unmatchable ?? NONE };
}

/**
 * `payload`, or when its text may hold a number that JSON.parse rounded, the
 * text read again with such numbers marked. Tokens carry small integers
 * (`iat`, `exp`), so the common answer is `payload` after one scan.
 */
function exactly(payload: Readonly<Record<string, unknown>>, json: string | undefined) {
  if (json === undefined || !mayHoldInexactNumbers(json)) return payload;
  const exact = parseJsonExactly(json);
  if (!isJsonObject(exact)) throw new TypeError('json is not the text of payload');
  return exact;
}
