import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideCachedRead, type CachedRead, type CachedReadInput } from './secret-cache.js';

const cases: Array<[string, CachedReadInput, CachedRead]> = [
  ['never read, in the index', { indexRv: '7', heldFor: undefined, heldRv: undefined }, 'get'],
  ['never read, not in the index', { indexRv: undefined, heldFor: undefined, heldRv: undefined }, 'absent'],
  ['read at the current index version', { indexRv: '7', heldFor: '7', heldRv: '7' }, 'held'],
  ['index moved on since the read', { indexRv: '9', heldFor: '7', heldRv: '7' }, 'get'],
  ['read ran ahead of the watch, index unchanged', { indexRv: '7', heldFor: '7', heldRv: '9' }, 'held'],
  ['watch caught up with what the read returned', { indexRv: '9', heldFor: '7', heldRv: '9' }, 'held'],
  ['read as absent, still absent', { indexRv: undefined, heldFor: '', heldRv: undefined }, 'held'],
  ['read as absent, created since', { indexRv: '4', heldFor: '', heldRv: undefined }, 'get'],
  ['read before the create event arrived', { indexRv: undefined, heldFor: '', heldRv: '4' }, 'held'],
  ['held copy, deleted since', { indexRv: undefined, heldFor: '7', heldRv: '7' }, 'absent'],
  ['GET said 404 while the index still lists it', { indexRv: '7', heldFor: '7', heldRv: undefined }, 'held'],
  ['404 earlier, recreated since', { indexRv: '12', heldFor: '7', heldRv: undefined }, 'get'],
];

for (const [name, input, want] of cases) {
  test(`decideCachedRead: ${name} → ${want}`, () => {
    assert.equal(decideCachedRead(input), want);
  });
}
