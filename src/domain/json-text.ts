/**
 * Reading JSON text where JSON.parse loses what was written. JSON.parse turns
 * every number into the nearest IEEE 754 double (RFC 8259 §6 leaves precision
 * to implementations), so `9007199254740993` reads as 9007199254740992 and
 * `0.1000000000000000000001` as 0.1: a claim would then match a mapping written
 * for its neighbour. Only the text tells them apart, and a reviver cannot see
 * it on Node 20.
 */

/** A number that no double holds exactly, as written in the JSON text. */
export class InexactNumber {
  constructor(readonly text: string) {}
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const UPPER_E = 0x45;
const LOWER_E = 0x65;
/** Integers of up to 15 digits are below 2^53 − 1, so their doubles are exact. */
const MAX_EXACT_DIGITS = 15;

/**
 * Index of the quote that closes the JSON string opening at `start`, or the
 * text's length when it is not closed.
 */
export function stringEnd(json: string, start: number): number {
  let end = json.indexOf('"', start + 1);
  while (end !== -1 && isEscaped(json, end)) end = json.indexOf('"', end + 1);
  return end === -1 ? json.length : end;
}

/** Whether the quote at `index` is escaped: preceded by an odd number of backslashes. */
function isEscaped(json: string, index: number): boolean {
  let backslashes = 0;
  while (json.charCodeAt(index - 1 - backslashes) === BACKSLASH) backslashes += 1;
  return backslashes % 2 === 1;
}

/**
 * Whether a valid JSON text may hold a number that JSON.parse rounds: one with
 * a fraction, an exponent or more than 15 digits. Integers of at most 15
 * digits (all that `iat` and `exp` need) never are, and answer false after one
 * pass that skips strings, with no allocation.
 */
export function mayHoldInexactNumbers(json: string): boolean {
  let digits = 0;
  for (let i = 0; i < json.length; i++) {
    const char = json.charCodeAt(i);
    if (char >= DIGIT_0 && char <= DIGIT_9) {
      if (++digits > MAX_EXACT_DIGITS) return true;
      continue;
    }
    // Outside strings a dot is only ever in a number, and an exponent always follows a digit
    // (the e of true and false follows a letter).
    if (char === DOT || ((char === LOWER_E || char === UPPER_E) && digits > 0)) return true;
    digits = 0;
    if (char === QUOTE) i = stringEnd(json, i);
  }
  return false;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const NUMBER_PARTS = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** The value a decimal text denotes, as `<sign><significant digits>e<power of the last digit>`; zero is "0". */
function canonicalDecimal(text: string): string {
  const [, sign, whole, fraction = '', exponent = '0'] = NUMBER_PARTS.exec(text)!;
  const digits = whole! + fraction;
  let power = Number(exponent) - fraction.length;
  let first = 0;
  while (digits[first] === '0') first += 1;
  let last = digits.length;
  while (last > first && digits[last - 1] === '0') {
    last -= 1;
    power += 1;
  }
  return first === last ? '0' : `${sign}${digits.slice(first, last)}e${power}`;
}

/**
 * Whether the JSON number `text` is exactly what its double says: an integer
 * within ±(2^53 − 1), where every integer has a double of its own, or a
 * finite decimal that denotes the same value as the double's shortest text
 * (`1.50` and `15e-1` are 1.5; `0.1000000000000000000001` is not 0.1, and
 * `1e400` is no number at all).
 */
export function isExactNumber(text: string, value: number = Number(text)): boolean {
  if (!Number.isFinite(value)) return false;
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) return false;
  return canonicalDecimal(text) === canonicalDecimal(String(value));
}

const LITERALS: readonly (readonly [string, unknown])[] = [
  ['true', true],
  ['false', false],
  ['null', null],
];

type Open = { readonly array: unknown[] } | { readonly object: Record<string, unknown>; key: string };

/**
 * Parses JSON text as JSON.parse does, except that a number that no double
 * holds exactly (see isExactNumber) becomes an InexactNumber. Iterative, so
 * nesting depth is bounded by the text alone, as with JSON.parse.
 *
 * @throws SyntaxError when `json` is not JSON
 */
export function parseJsonExactly(json: string): unknown {
  let at = 0;
  const fail = (): never => {
    throw new SyntaxError(`unexpected ${at < json.length ? JSON.stringify(json[at]) : 'end'} at ${at} in JSON`);
  };
  const skipSpace = () => {
    for (let char = json[at]; char === ' ' || char === '\t' || char === '\n' || char === '\r'; char = json[at]) at++;
  };
  const readString = (): string => {
    const end = stringEnd(json, at);
    if (end === json.length) fail();
    const raw = json.slice(at, end + 1);
    at = end + 1;
    // Escapes and the refusal of control characters, exactly as JSON.parse has them.
    return JSON.parse(raw) as string;
  };
  const readName = (): string => {
    skipSpace();
    if (json[at] !== '"') fail();
    const name = readString();
    skipSpace();
    if (json[at++] !== ':') fail();
    return name;
  };
  const readScalar = (): unknown => {
    for (const [word, value] of LITERALS) {
      if (json.startsWith(word, at)) {
        at += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = at;
    const text = NUMBER.exec(json)?.[0] ?? fail();
    at += text.length;
    const value = Number(text);
    return isExactNumber(text, value) ? value : new InexactNumber(text);
  };

  const open: Open[] = [];
  for (;;) {
    skipSpace();
    let value: unknown;
    const char = json[at];
    if (char === '[' || char === '{') {
      at++;
      skipSpace();
      if (json[at] === (char === '[' ? ']' : '}')) {
        at++;
        value = char === '[' ? [] : {};
      } else {
        open.push(char === '[' ? { array: [] } : { object: {}, key: readName() });
        continue;
      }
    } else if (char === '"') {
      value = readString();
    } else {
      value = readScalar();
    }

    // Put the value in its container; a container that ends there is itself the next value to put.
    for (;;) {
      const container = open[open.length - 1];
      if (!container) {
        skipSpace();
        if (at !== json.length) fail();
        return value;
      }
      if ('array' in container) {
        container.array.push(value);
      } else {
        // An assignment to "__proto__" would set the prototype; JSON.parse makes an own member.
        const member = { value, writable: true, enumerable: true, configurable: true };
        Object.defineProperty(container.object, container.key, member);
      }
      skipSpace();
      const next = json[at++];
      if (next === ',') {
        if ('object' in container) container.key = readName();
        break;
      }
      if (next !== ('array' in container ? ']' : '}')) {
        at--;
        fail();
      }
      open.pop();
      value = 'array' in container ? container.array : container.object;
    }
  }
}
