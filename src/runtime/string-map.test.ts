import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sameStringMap } from './string-map.js';

test('sameStringMap compares keys and values, a missing map as empty', () => {
  const cases: Array<[Record<string, string> | undefined, Record<string, string> | undefined, boolean]> = [
    [undefined, undefined, true],
    [undefined, {}, true],
    [{ a: '1' }, { a: '1' }, true],
    [{ a: '1', b: '2' }, { b: '2', a: '1' }, true],
    [{ a: '1' }, { a: '2' }, false],
    [{ a: '1' }, { b: '1' }, false],
    [{ a: '1' }, {}, false],
    [{}, { a: '' }, false],
    [{ a: '' }, undefined, false],
  ];
  for (const [a, b, want] of cases)
    assert.equal(sameStringMap(a, b), want, `${JSON.stringify(a)} ${JSON.stringify(b)}`);
});
