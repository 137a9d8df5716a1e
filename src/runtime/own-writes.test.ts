import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OwnWrites } from './own-writes.js';

test('only the exact version written is an echo, and only once', () => {
  type Step = ['wrote' | 'event', string, string, boolean?];
  const cases: Array<{ name: string; steps: Step[] }> = [
    {
      name: 'the echo of a write',
      steps: [
        ['wrote', 'a', '10'],
        ['event', 'a', '10', true],
      ],
    },
    {
      name: 'a second event of the same version',
      steps: [
        ['wrote', 'a', '10'],
        ['event', 'a', '10', true],
        ['event', 'a', '10', false],
      ],
    },
    {
      name: 'another version of the object',
      steps: [
        ['wrote', 'a', '10'],
        ['event', 'a', '11', false],
      ],
    },
    {
      name: 'another version first, then the recorded one',
      steps: [
        ['wrote', 'a', '10'],
        ['event', 'a', '9', false],
        ['event', 'a', '10', false],
      ],
    },
    {
      name: 'another object',
      steps: [
        ['wrote', 'a', '10'],
        ['event', 'b', '10', false],
      ],
    },
    { name: 'nothing written', steps: [['event', 'a', '10', false]] },
    {
      name: 'a later write replaces the earlier version',
      steps: [
        ['wrote', 'a', '10'],
        ['wrote', 'a', '12'],
        ['event', 'a', '12', true],
      ],
    },
  ];
  for (const c of cases) {
    const own = new OwnWrites();
    c.steps.forEach(([kind, name, rv, want], i) => {
      if (kind === 'wrote') own.wrote('Secret', 'ns', name, rv);
      else assert.equal(own.isEcho('Secret', 'ns', name, rv), want, `${c.name}, step ${i}`);
    });
  }
});

test('kind and namespace are part of the identity', () => {
  const own = new OwnWrites();
  own.wrote('Secret', 'ns', 'a', '10');
  assert.equal(own.isEcho('ServiceAccount', 'ns', 'a', '10'), false);
  own.wrote('Secret', 'ns', 'a', '10');
  assert.equal(own.isEcho('Secret', 'other', 'a', '10'), false);
  assert.equal(own.isEcho('Secret', 'ns', 'a', '10'), true);
});

test('bounded: the oldest entries go past maxEntries, and every entry after ttlMs', () => {
  let clock = 0;
  const own = new OwnWrites(3, 1000, () => clock);
  for (const name of ['a', 'b', 'c', 'd']) own.wrote('Secret', 'ns', name, '1');
  assert.equal(own.size, 3);
  assert.equal(own.isEcho('Secret', 'ns', 'a', '1'), false, 'the oldest was dropped');
  assert.equal(own.isEcho('Secret', 'ns', 'd', '1'), true);
  clock = 1001;
  assert.equal(own.isEcho('Secret', 'ns', 'b', '1'), false, 'aged out');
  assert.equal(own.size, 0);
});

test('a write without a resourceVersion records nothing', () => {
  const own = new OwnWrites();
  own.wrote('Secret', 'ns', 'a', undefined);
  assert.equal(own.size, 0);
  assert.equal(own.isEcho('Secret', 'ns', 'a', undefined), false);
});
