// The soak's expectations and statistics (run: npx tsx --test bench/soak-model.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseDuration,
  percentile,
  placeholderDifferences,
  Random,
  slope,
  SoakModel,
  type ModelExport,
  type ModelNamespace,
} from './soak-model.js';

const ns = (name: string, excluded = false): ModelNamespace => ({
  name,
  excluded,
  placeholders: new Set(),
  imports: new Map(),
  apps: new Map(),
});
const exp = (over: Partial<ModelExport>): ModelExport => ({
  namespace: 'src',
  name: 'cred',
  exported: true,
  toNamespaces: ['*'],
  sourcePresent: true,
  kind: 'dockerconfigjson',
  host: 'reg.test',
  username: 'u',
  password: 'p',
  ...over,
});
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64');

describe('SoakModel.reaches', () => {
  const cases: Array<[string, Partial<ModelExport>, ModelNamespace, boolean]> = [
    ['"*" reaches an included namespace', {}, ns('a'), true],
    ['"*" skips an excluded namespace', {}, ns('a', true), false],
    ['an explicit name reaches an excluded namespace', { toNamespaces: ['a'] }, ns('a', true), true],
    ['another name does not reach', { toNamespaces: ['b'] }, ns('a'), false],
    ['no SecretExport, nothing reaches', { exported: false }, ns('a'), false],
    ['no source Secret, nothing reaches', { sourcePresent: false }, ns('a'), false],
  ];
  for (const [name, over, target, want] of cases) {
    test(name, () => assert.equal(new SoakModel().reaches(exp(over), target), want));
  }

  test('a placeholder expects the dockerconfigjson exports that reach it, and only those', () => {
    const model = new SoakModel();
    model.exports.set('src/a', exp({ name: 'a', host: 'a.test' }));
    model.exports.set('src/b', exp({ name: 'b', host: 'b.test', kind: 'opaque' }));
    model.exports.set('src/c', exp({ name: 'c', host: 'c.test', toNamespaces: ['other'] }));
    assert.deepEqual([...model.expectedPlaceholder(ns('x')).keys()], ['a.test']);
  });
});

describe('placeholderDifferences', () => {
  const want = new Map([['a.test', { username: 'u', password: 'p' }]]);
  const cases: Array<[string, string | undefined, string[]]> = [
    ['exact', b64({ auths: { 'a.test': { username: 'u', password: 'p', auth: 'dTpw' } } }), []],
    [
      'stale password',
      b64({ auths: { 'a.test': { username: 'u', password: 'old' } } }),
      ['stale credential for a.test'],
    ],
    ['missing host', b64({ auths: {} }), ['missing a.test']],
    [
      'extra host',
      b64({
        auths: { 'a.test': { username: 'u', password: 'p' }, 'x.test': { username: 'u', password: 'p' } },
      }),
      ['unexpected x.test'],
    ],
    ['no auths', b64({}), ['no auths object']],
    ['not JSON', b64('{'), ['.dockerconfigjson is not JSON']],
    ['no data', undefined, ['no .dockerconfigjson']],
  ];
  for (const [name, data, diffs] of cases) {
    test(name, () => assert.deepEqual(placeholderDifferences(data, want), diffs));
  }
});

describe('statistics and parsing', () => {
  const slopes: Array<[string, Array<[number, number]>, number]> = [
    [
      'flat',
      [
        [0, 5],
        [1, 5],
        [2, 5],
      ],
      0,
    ],
    [
      'rising 10 per unit',
      [
        [0, 0],
        [1, 10],
        [2, 20],
      ],
      10,
    ],
    [
      'noisy but rising 1 per unit',
      [
        [0, 1],
        [1, 1],
        [2, 3],
        [3, 3],
      ],
      0.8,
    ],
  ];
  for (const [name, points, want] of slopes) {
    test(`slope: ${name}`, () => assert.ok(Math.abs(slope(points) - want) < 1e-9, String(slope(points))));
  }
  test('slope of one point is NaN', () => assert.ok(Number.isNaN(slope([[0, 1]]))));

  const pct: Array<[number[], number, number]> = [
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99, 10],
    [[7], 99, 7],
  ];
  for (const [sorted, p, want] of pct) {
    test(`p${p} of ${sorted.length} values`, () => assert.equal(percentile(sorted, p), want));
  }

  const durations: Array<[string, number | Error]> = [
    ['30m', 1_800_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['', new Error('empty duration')],
    ['3 m', new Error('invalid duration "3 m" (use e.g. 30m, 90s, 1h30m)')],
  ];
  for (const [text, want] of durations) {
    test(`duration ${JSON.stringify(text)}`, () => {
      if (want instanceof Error) assert.throws(() => parseDuration(text), { message: want.message });
      else assert.equal(parseDuration(text), want);
    });
  }

  test('the same seed gives the same choices; another seed others', () => {
    const draw = (seed: number) => {
      const r = new Random(seed);
      return Array.from({ length: 20 }, () => r.int(0, 1000));
    };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(42), draw(43));
  });

  test('weighted never picks a zero weight', () => {
    const r = new Random(1);
    for (let i = 0; i < 500; i++)
      assert.notEqual(
        r.weighted([
          ['never', 0],
          ['a', 1],
          ['b', 2],
        ] as const),
        'never',
      );
  });
});
