import { describe, expect, it } from '@jest/globals';
import {
  AmbiguousClaimError,
  InvalidClaimsError,
  MAX_CLAIM_VALUES,
  TooManyClaimsError,
  flattenClaims,
} from '../../src/domain/claims.js';
import { InexactNumber, mayHoldInexactNumbers, parseJsonExactly } from '../../src/domain/json-text.js';

/** Flattens a payload as the exchange does: the parsed value and the text it came from. */
const flattenText = (json: string) => flattenClaims(JSON.parse(json) as Record<string, unknown>, json);

describe('flattenClaims', () => {
  it('turns a payload into lists of strings', () => {
    const { claims, unmatchable } = flattenClaims({
      sub: 'abc',
      n: 42,
      f: 1.5,
      ok: true,
      gone: null,
      groups: ['a', 'b', 'a', 7, null, { x: 1 }, ['nested']],
      empty: [],
      'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'builder', uid: 'u-1' } },
    });
    expect(Object.fromEntries(claims)).toEqual({
      sub: ['abc'],
      n: ['42'],
      f: ['1.5'],
      ok: ['true'],
      groups: ['a', 'b', '7'],
      'kubernetes.io.namespace': ['ci'],
      'kubernetes.io.serviceaccount.name': ['builder'],
      'kubernetes.io.serviceaccount.uid': ['u-1'],
    });
    expect(unmatchable).toEqual([]);
  });

  it('keeps an empty member name as a segment of its own, so it cannot pass for a top-level claim', () => {
    expect(Object.fromEntries(flattenClaims({ '': { repository_owner: 'victim-org' } }).claims)).toEqual({
      '.repository_owner': ['victim-org'],
    });
    expect(Object.fromEntries(flattenClaims({ '': 'x' }).claims)).toEqual({ '': ['x'] });
    expect(Object.fromEntries(flattenClaims({ a: { '': 'x' } }).claims)).toEqual({ 'a.': ['x'] });
    expect(Object.fromEntries(flattenClaims({ '': { '': { b: 'x' } } }).claims)).toEqual({ '..b': ['x'] });
  });

  it('flattens nested objects to depth 8 and no deeper', () => {
    const nested = (segments: number): Record<string, unknown> => {
      let value: unknown = 'leaf';
      for (let i = segments - 1; i >= 0; i--) value = { [`k${i}`]: value };
      return value as Record<string, unknown>;
    };
    expect([...flattenClaims(nested(8)).claims.keys()]).toEqual(['k0.k1.k2.k3.k4.k5.k6.k7']);
    expect([...flattenClaims(nested(9)).claims.keys()]).toEqual([]);
  });

  it('refuses more than 1000 values, as an invalid-claims error', () => {
    const many = { many: Array.from({ length: MAX_CLAIM_VALUES + 1 }, (_, i) => `v${i}`) };
    expect(() => flattenClaims(many)).toThrow(TooManyClaimsError);
    expect(() => flattenClaims(many)).toThrow(InvalidClaimsError);
    expect(() => flattenClaims(many)).toThrow('more than 1000 claim values');
  });

  describe('a key produced twice is ambiguous, whichever comes first', () => {
    it.each([
      ['{"a":{"b":"user"},"a.b":"admin"}', 'a.b'],
      ['{"a.b":"admin","a":{"b":"user"}}', 'a.b'],
      ['{"x":{"a":{"b":1},"a.b":2}}', 'x.a.b'],
      ['{"a.b":{"c":"1"},"a":{"b.c":"2"}}', 'a.b.c'],
      ['{"a":{"b":["user"]},"a.b":["admin"]}', 'a.b'],
      ['{"a":{"b":"user"},"a.b":["user","admin"]}', 'a.b'],
      // A member whose value is left out still names its key: the other one must not win by default.
      ['{"a":{"b":null},"a.b":"admin"}', 'a.b'],
      ['{"a.b":"admin","a":{"b":[]}}', 'a.b'],
      ['{"a":{"b":[{"c":1}]},"a.b":"admin"}', 'a.b'],
      ['{"a":{"b":1e400},"a.b":"admin"}', 'a.b'],
      ['{"a":{"b":9007199254740993},"a.b":"admin"}', 'a.b'],
      [
        '{"kubernetes.io":{"serviceaccount":{"uid":"u-1"}},"kubernetes.io.serviceaccount.uid":"u-admin"}',
        'kubernetes.io.serviceaccount.uid',
      ],
      ['{"a":{"b":{"c":{"d":"x"}}},"a.b":{"c.d":"y"}}', 'a.b.c.d'],
      ['{"a\\"b":{"c":"x"},"a\\"b.c":"y"}', 'a"b.c'],
      ['{"":{"a":"x"},".a":"y"}', '.a'],
      ['{"a":{"":"x"},"a.":"y"}', 'a.'],
    ])('%s → %s', (json, key) => {
      let thrown: unknown;
      try {
        flattenText(json);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(AmbiguousClaimError);
      expect(thrown).toBeInstanceOf(InvalidClaimsError);
      expect((thrown as AmbiguousClaimError).message).toBe(`ambiguous claim ${JSON.stringify(key)}`);
      expect((thrown as AmbiguousClaimError).key).toBe(key);
    });

    it('says exactly: ambiguous claim "a.b"', () => {
      expect(() => flattenText('{"a":{"b":"user"},"a.b":"admin"}')).toThrow(new AmbiguousClaimError('a.b'));
      expect(new AmbiguousClaimError('a.b').message).toBe('ambiguous claim "a.b"');
    });

    it.each([
      // Objects inside arrays are ignored, so they produce no key.
      ['{"a":[{"b":"user"}],"a.b":"admin"}', { 'a.b': ['admin'] }],
      // An object past the depth limit is ignored, so its keys are never produced.
      [
        `{"k1":{"k2":{"k3":{"k4":{"k5":{"k6":{"k7":{"k8":{"k9":"deep"}}}}}}}},"k1.k2.k3.k4.k5.k6.k7.k8.k9":"flat"}`,
        { 'k1.k2.k3.k4.k5.k6.k7.k8.k9': ['flat'] },
      ],
      // A prefix is not a key: "a.b" and "a.b.c" are different claims.
      ['{"a":{"b":{"c":"x"}},"a.b":"y"}', { 'a.b.c': ['x'], 'a.b': ['y'] }],
      ['{"a":{"b":"x"},"a.c":"y","b":{"a":"z"}}', { 'a.b': ['x'], 'a.c': ['y'], 'b.a': ['z'] }],
    ])('is not confused by %s', (json, expected) => {
      expect(Object.fromEntries(flattenText(json).claims)).toEqual(expected);
    });
  });

  describe('numbers are matchable only when exactly representable', () => {
    it.each([
      ['42', '42'],
      ['-7', '-7'],
      ['0', '0'],
      ['-0', '0'],
      ['999999999999999', '999999999999999'],
      ['9007199254740991', '9007199254740991'],
      ['-9007199254740991', '-9007199254740991'],
      ['9007199254740991.0', '9007199254740991'],
      ['1.5', '1.5'],
      ['1.50', '1.5'],
      ['15e-1', '1.5'],
      ['0.15E+1', '1.5'],
      ['-1.5e0', '-1.5'],
      ['1.0', '1'],
      ['1e2', '100'],
      ['100e-2', '1'],
      ['0.1', '0.1'],
      ['0.3', '0.3'],
      ['0.30000000000000004', '0.30000000000000004'],
      ['1e-7', '1e-7'],
      ['0e99999999999999999999', '0'],
      ['1e00000000000000000000001', '10'],
    ])('%s is matchable as %s', (text, expected) => {
      const { claims, unmatchable } = flattenText(`{"n":${text}}`);
      expect(claims.get('n')).toEqual([expected]);
      expect(unmatchable).toEqual([]);
    });

    it.each([
      '9007199254740992',
      '9007199254740993',
      '-9007199254740993',
      '123456789012345678',
      '9007199254740991.5',
      '1.00000000000000000001',
      '0.1000000000000000000001',
      '1e21',
      '1.5e300',
      '1e400',
      '-1e400',
      '1e-400',
    ])('%s is left out and reported unmatchable', (text) => {
      const { claims, unmatchable } = flattenText(`{"sub":"s","n":${text}}`);
      expect(Object.fromEntries(claims)).toEqual({ sub: ['s'] });
      expect(unmatchable).toEqual(['n']);
    });

    it('leaves inexact elements out of arrays, and reports their key', () => {
      const { claims, unmatchable } = flattenText(
        '{"ns":[1,9007199254740993,1.50,1e400],"only":[1e400],"o":{"p":{"q":0.1000000000000000000001}},"ok":[2]}',
      );
      expect(Object.fromEntries(claims)).toEqual({ ns: ['1', '1.5'], ok: ['2'] });
      expect(unmatchable).toEqual(['ns', 'only', 'o.p.q']);
    });

    it('reads strings that look like numbers as strings', () => {
      const { claims, unmatchable } = flattenText(
        '{"s":"9007199254740993","t":"1e400","u":"0.1000000000000000000001"}',
      );
      expect(Object.fromEntries(claims)).toEqual({
        s: ['9007199254740993'],
        t: ['1e400'],
        u: ['0.1000000000000000000001'],
      });
      expect(unmatchable).toEqual([]);
    });

    it('without the text, judges numbers by value: unsafe integers and non-finite numbers are unmatchable', () => {
      const { claims, unmatchable } = flattenClaims({
        a: 2 ** 53,
        b: Infinity,
        c: Number.NaN,
        d: [1, 2 ** 60],
        e: 0.5,
      });
      expect(Object.fromEntries(claims)).toEqual({ d: ['1'], e: ['0.5'] });
      expect(unmatchable).toEqual(['a', 'b', 'c', 'd']);
    });
  });
});

describe('mayHoldInexactNumbers', () => {
  it.each([
    ['{"iat":1700000000,"exp":1700000600,"sub":"a.b","e":"1e5","x":true,"y":false,"z":null}', false],
    ['{"n":999999999999999,"m":-999999999999999}', false],
    ['{"s":"12345678901234567890","t":"\\"1.5"}', false],
    ['[true,false,null,1,-2,{"e":[]}]', false],
    ['{"a\\\\":"1.5","b":1}', false],
    ['{"n":1000000000000000}', true],
    ['{"n":-9007199254740991}', true],
    ['{"n":1.5}', true],
    ['{"n":1e5}', true],
    ['{"n":1E5}', true],
    ['{"n":[0, 2e-3]}', true],
    ['{"a\\\\":"x","n":1.5}', true],
    ['{"a":"\\"","n":1.5}', true],
    // Not JSON, but never a loop: an unclosed string ends the scan.
    ['{"a":"1.5', false],
  ])('%s: %s', (json, expected) => {
    expect(mayHoldInexactNumbers(json)).toBe(expected);
  });
});

describe('parseJsonExactly', () => {
  it.each([
    '{}',
    '[]',
    '"x"',
    'true',
    'null',
    '-12',
    ' { "a" : [ 1 , 2.5 , "x" , true , false , null , { } , [ ] ] , "b" : { "c" : { "d" : -0.25e1 } } } ',
    '{"esc":"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00","k\\u0065y":1}',
    '{"1":"one","b":"bee","0":"zero"}',
    '{"s":"1.5","n":1.5,"i":9007199254740991}',
    '{"é":"ü","emoji":"😀"}',
  ])('reads %s as JSON.parse does', (json) => {
    const read = parseJsonExactly(json);
    const parsed: unknown = JSON.parse(json);
    expect(read).toEqual(parsed);
    if (typeof parsed === 'object' && parsed !== null) expect(Object.keys(read as object)).toEqual(Object.keys(parsed));
  });

  it('marks the numbers that JSON.parse would round', () => {
    expect(parseJsonExactly('{"a":[1e400,2],"b":9007199254740993,"c":{"d":1.50}}')).toEqual({
      a: [new InexactNumber('1e400'), 2],
      b: new InexactNumber('9007199254740993'),
      c: { d: 1.5 },
    });
  });

  it('keeps __proto__ an own member, as JSON.parse does', () => {
    const read = parseJsonExactly('{"__proto__":{"admin":true},"n":1.5}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(read)).toBe(Object.prototype);
    expect(Object.keys(read)).toEqual(['__proto__', 'n']);
    expect((read as { admin?: unknown }).admin).toBeUndefined();
  });

  it('reads deep nesting without recursion', () => {
    const depth = 100_000;
    const json = `${'['.repeat(depth)}1.5${']'.repeat(depth)}`;
    let value = parseJsonExactly(json);
    for (let i = 0; i < depth; i++) value = (value as unknown[])[0];
    expect(value).toBe(1.5);
  });

  it.each(['', '{', '{"a":}', '[1,]', '{"a":1}x', 'tru', '01'])('refuses %s as JSON.parse does', (json) => {
    expect(() => JSON.parse(json)).toThrow(SyntaxError);
    expect(() => parseJsonExactly(json)).toThrow(SyntaxError);
  });
});
