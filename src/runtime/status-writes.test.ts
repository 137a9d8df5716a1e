import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentStatusWrites } from './status-writes.js';

const ok = { conditions: [{ type: 'ReconcileSucceeded', status: 'True' }] };
const failed = { conditions: [{ type: 'ReconcileFailed', status: 'True' }] };

test('the same status over the same cached version is not written twice', () => {
  const cases: Array<{
    name: string;
    written?: [basedOn: string | undefined, status: unknown];
    cachedVersion: string | undefined;
    status: unknown;
    expected: boolean;
  }> = [
    { name: 'nothing written yet', cachedVersion: '5', status: ok, expected: false },
    {
      name: 'cache still at the written-over version',
      written: ['5', ok],
      cachedVersion: '5',
      status: ok,
      expected: true,
    },
    { name: 'a different status', written: ['5', ok], cachedVersion: '5', status: failed, expected: false },
    { name: 'cache moved on', written: ['5', ok], cachedVersion: '6', status: ok, expected: false },
    {
      name: 'written over an unknown version',
      written: [undefined, ok],
      cachedVersion: undefined,
      status: ok,
      expected: false,
    },
  ];
  for (const c of cases) {
    const recent = new RecentStatusWrites();
    if (c.written) recent.written('ns/a', c.written[0], c.written[1]);
    assert.equal(recent.alreadyWritten('ns/a', c.cachedVersion, c.status), c.expected, c.name);
    assert.equal(recent.alreadyWritten('ns/b', c.cachedVersion, c.status), false, `${c.name}: other key`);
  }
});

test('an entry ends once the cache moves on, and when forgotten', () => {
  const recent = new RecentStatusWrites();
  recent.written('ns/a', '5', ok);
  assert.equal(recent.alreadyWritten('ns/a', '6', ok), false);
  // Back at the old version (a relist of a stale cache, say): the entry is gone, so the status is written.
  assert.equal(recent.alreadyWritten('ns/a', '5', ok), false);
  assert.equal(recent.size, 0);
  recent.written('ns/a', '7', ok);
  recent.forget('ns/a');
  assert.equal(recent.alreadyWritten('ns/a', '7', ok), false);
});

test('entries last 30 s', () => {
  let nowMs = 0;
  const recent = new RecentStatusWrites(10, () => nowMs);
  recent.written('a', '5', ok);
  nowMs = 29_000;
  recent.written('b', '5', ok);
  assert.equal(recent.alreadyWritten('a', '5', ok), true);
  nowMs = 30_001;
  assert.equal(recent.alreadyWritten('a', '5', ok), false, 'expired');
  assert.equal(recent.alreadyWritten('b', '5', ok), true);
  assert.equal(recent.size, 1);
});

test('at most maxEntries are kept, the oldest dropped first', () => {
  const recent = new RecentStatusWrites(2);
  recent.written('a', '1', ok);
  recent.written('b', '1', ok);
  recent.written('a', '2', ok); // rewritten: now the newest
  recent.written('c', '1', ok);
  assert.equal(recent.size, 2);
  assert.equal(recent.alreadyWritten('b', '1', ok), false);
  assert.equal(recent.alreadyWritten('a', '2', ok), true);
  assert.equal(recent.alreadyWritten('c', '1', ok), true);
});
