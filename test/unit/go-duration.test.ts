import { describe, expect, it } from '@jest/globals';
import { DurationSyntaxError, parseGoDuration } from '../../src/domain/go-duration.js';

const S = 1e9;

describe('parseGoDuration', () => {
  it.each([
    ['0', 0],
    ['90s', 90 * S],
    ['45m', 45 * 60 * S],
    ['1h30m', 5400 * S],
    ['2h45m', 9900 * S],
    ['1.5h', 5400 * S],
    ['.5h', 1800 * S],
    ['1.h', 3600 * S],
    ['24h', 86400 * S],
    ['1h0m0s', 3600 * S],
    ['-1m', -60 * S],
    ['+5m', 300 * S],
    ['300ms', 0.3 * S],
    ['1µs', 1000],
    ['1μs', 1000],
    ['1us', 1000],
    ['7ns', 7],
    ['1m30.5s', 90.5 * S],
  ])('parses %j as Go does', (text, nanos) => {
    expect(parseGoDuration(text)).toBe(nanos);
  });

  it.each([
    ['', 'invalid duration ""'],
    ['5', 'missing unit in duration "5"'],
    ['1d', 'unknown unit "d" in duration "1d"'],
    ['1w', 'unknown unit "w" in duration "1w"'],
    ['1H', 'unknown unit "H" in duration "1H"'],
    ['h', 'invalid duration "h"'],
    ['.h', 'invalid duration ".h"'],
    ['-', 'invalid duration "-"'],
    ['1h ', 'unknown unit "h " in duration "1h "'],
    [' 1h', 'invalid duration " 1h"'],
    ['1h-1m', 'unknown unit "h-" in duration "1h-1m"'],
    ['3000000h', 'invalid duration "3000000h"'],
  ])("refuses %j with Go's reason", (text, reason) => {
    expect(() => parseGoDuration(text)).toThrow(new DurationSyntaxError(reason));
  });
});
