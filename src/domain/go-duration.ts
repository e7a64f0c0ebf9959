/**
 * A parser for Go's time.ParseDuration syntax, which the wire format of
 * `tokenExpirationDuration` is (StackRox validates it with Go):
 * `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or the bare `0`.
 */

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's durations are int64 nanoseconds. */
const MAX_NANOS = 2 ** 63 - 1;

export class DurationSyntaxError extends Error {
  override readonly name = 'DurationSyntaxError';
}

/**
 * Parses a Go duration string.
 *
 * @returns the duration in nanoseconds (exact for anything up to ~104 days)
 * @throws DurationSyntaxError with Go's wording for every string Go refuses
 */
export function parseGoDuration(text: string): number {
  const quoted = JSON.stringify(text);
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new DurationSyntaxError(`invalid duration ${quoted}`);

  let total = 0;
  while (rest !== '') {
    const component = /^(\d*)(?:\.(\d*))?/.exec(rest);
    const [matched = '', whole = '', fraction] = component ?? [];
    if (whole === '' && (fraction ?? '') === '') {
      throw new DurationSyntaxError(`invalid duration ${quoted}`);
    }
    rest = rest.slice(matched.length);
    const unit = /^[^\d.]*/.exec(rest)?.[0] ?? '';
    if (unit === '') throw new DurationSyntaxError(`missing unit in duration ${quoted}`);
    const scale = NANOS_PER_UNIT[unit];
    if (scale === undefined) {
      throw new DurationSyntaxError(`unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    }
    rest = rest.slice(unit.length);
    total += Number(whole || '0') * scale + Number(`0.${fraction ?? ''}`) * scale;
    if (total > MAX_NANOS) throw new DurationSyntaxError(`invalid duration ${quoted}`);
  }
  return sign * Math.round(total);
}

export const NANOS_PER_SECOND = 1e9;

/** Whole seconds as Go prints a duration: `3m12s`, `1h0m5s`, `0s`. */
export function formatDuration(seconds: number): string {
  const whole = Math.floor(Math.abs(seconds));
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
