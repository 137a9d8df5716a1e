import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hasRoom, namespaceShare, nextNamespace, slotLimits } from './fetch-slots.js';

const use = (entries: Record<string, number>) => new Map(Object.entries(entries));

describe('namespaceShare', () => {
  const cases: Array<[number, number]> = [
    [1, 1],
    [2, 1],
    [3, 2],
    [8, 4],
    [9, 5],
    [64, 32],
  ];
  for (const [max, share] of cases) {
    it(`${max} slots give a namespace ${share}`, () => assert.equal(namespaceShare(max), share));
  }
});

describe('hasRoom', () => {
  const limits = slotLimits(8);
  const cases: Array<{ name: string; inUse: Record<string, number>; namespace: string; want: boolean }> = [
    { name: 'nothing running', inUse: {}, namespace: 'a', want: true },
    { name: 'a namespace below its share', inUse: { a: 3 }, namespace: 'a', want: true },
    { name: 'a namespace at its share', inUse: { a: 4 }, namespace: 'a', want: false },
    { name: 'another namespace beside one at its share', inUse: { a: 4 }, namespace: 'b', want: true },
    { name: 'every slot taken', inUse: { a: 4, b: 4 }, namespace: 'c', want: false },
    { name: 'one slot left', inUse: { a: 4, b: 3 }, namespace: 'c', want: true },
    {
      name: 'one slot left, but not for a full namespace',
      inUse: { a: 4, b: 3 },
      namespace: 'a',
      want: false,
    },
  ];
  for (const { name, inUse, namespace, want } of cases) {
    it(name, () => assert.equal(hasRoom(limits, use(inUse), namespace), want));
  }
});

describe('nextNamespace', () => {
  const limits = slotLimits(8);
  const cases: Array<{ name: string; inUse: Record<string, number>; waiting: string[]; want?: string }> = [
    { name: 'nobody waits', inUse: { a: 1 }, waiting: [] },
    { name: 'the first waiting namespace with room', inUse: {}, waiting: ['b', 'a'], want: 'b' },
    { name: 'a namespace at its share is passed over', inUse: { a: 4 }, waiting: ['a', 'b'], want: 'b' },
    { name: 'only full namespaces wait', inUse: { a: 4, b: 1 }, waiting: ['a'] },
    { name: 'every slot taken', inUse: { a: 4, b: 4 }, waiting: ['c'] },
    {
      name: '32 waiting fetches of one namespace do not stop another',
      inUse: { a: 4 },
      waiting: ['a', 'b'],
      want: 'b',
    },
  ];
  for (const { name, inUse, waiting, want } of cases) {
    it(name, () => assert.equal(nextNamespace(limits, use(inUse), waiting), want));
  }

  it('a single slot goes to whichever namespace is first', () => {
    assert.equal(nextNamespace(slotLimits(1), use({}), ['x', 'y']), 'x');
    assert.equal(nextNamespace(slotLimits(1), use({ x: 1 }), ['y']), undefined);
  });
});
