// The operator compacts V8's old space after a burst instead of at every full
// collection: only when the space wastes enough, and rarely while busy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenToDomainMetrics } from './domain-metrics.js';
import {
  compactionTrigger,
  DEFAULT_COMPACTION_BOUNDS,
  HeapCompactor,
  v8CompactingCollection,
  type HeapSample,
} from './heap-compactor.js';
import { silentLogger } from './logger.js';

const MB = 2 ** 20;

test('compactionTrigger: after 3 s of quiet with some waste, while busy only with more, never too often', () => {
  const base: HeapSample = {
    committedBytes: 60 * MB,
    usedBytes: 40 * MB,
    quietForMs: 5_000,
    sinceLastCompactionMs: Infinity,
  };
  const rows: Array<[string, Partial<HeapSample>, ReturnType<typeof compactionTrigger>]> = [
    ['quiet 5 s, 20 MB wasted on 40 used', {}, 'quiet'],
    ['quiet 3 s, 6 MB wasted', { quietForMs: 3_000, committedBytes: 46 * MB }, 'quiet'],
    ['quiet only 2 s, 6 MB wasted', { quietForMs: 2_000, committedBytes: 46 * MB }, undefined],
    ['quiet, only 3 MB wasted', { committedBytes: 43 * MB }, undefined],
    [
      'quiet, 5 MB wasted but under a tenth of 60 MB used',
      { committedBytes: 65 * MB, usedBytes: 60 * MB },
      undefined,
    ],
    [
      'quiet, 6 MB wasted, compacted 5 s ago',
      { committedBytes: 46 * MB, sinceLastCompactionMs: 5_000 },
      undefined,
    ],
    ['quiet, compacted 10 s ago', { sinceLastCompactionMs: 10_000 }, 'quiet'],
    ['busy, 6 MB wasted: waits for a pause', { quietForMs: 0, committedBytes: 46 * MB }, undefined],
    ['busy, 20 MB wasted on 40 used', { quietForMs: 0 }, 'busy'],
    ['busy, 20 MB wasted, compacted 10 s ago', { quietForMs: 0, sinceLastCompactionMs: 10_000 }, undefined],
    ['busy, 20 MB wasted, compacted 15 s ago', { quietForMs: 0, sinceLastCompactionMs: 15_000 }, 'busy'],
    [
      'busy, 15 MB wasted but under a fifth of 100 MB used',
      { quietForMs: 0, committedBytes: 115 * MB, usedBytes: 100 * MB },
      undefined,
    ],
    ['more used than committed (sampling skew)', { committedBytes: 30 * MB }, undefined],
  ];
  for (const [name, change, want] of rows) {
    assert.equal(compactionTrigger({ ...base, ...change }, DEFAULT_COMPACTION_BOUNDS), want, name);
  }
});

function oldSpace(): { committed: number; used: number } {
  const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!;
  return { committed: space.space_size, used: space.space_used_size };
}

test('the compacting collection gives back the pages a burst left half empty', () => {
  const compact = v8CompactingCollection();
  // Old-space objects, then every other one dropped: each page stays half full, which V8's ordinary
  // full collection leaves in place (it evacuates only nearly empty pages).
  let kept: Array<{ n: number; s: string; a: number[] }> = [];
  for (let i = 0; i < 300_000; i++) kept.push({ n: i, s: `item-${i}`, a: [i, i + 1] });
  compact();
  const full = oldSpace();
  kept = kept.filter((_, i) => i % 2 === 0);
  compact();
  const after = oldSpace();
  assert.equal(kept.length, 150_000);
  assert.ok(
    after.committed < full.committed - 12 * MB,
    `old space committed ${after.committed / MB} MB after, ${full.committed / MB} MB before`,
  );
  assert.ok(
    after.committed - after.used < 5 * MB,
    `waste after compaction ${(after.committed - after.used) / MB} MB`,
  );
});

// Event-loop utilization reads 0 until the loop has started (Node 24 runs the first tests before that).
const loopStarted = () => sleep(1);

/** Keeps the event loop busy, as a burst of reconciles does. */
function busyFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('HeapCompactor compacts once after a burst, counts it, and then waits', async () => {
  await loopStarted();
  let collections = 0;
  let space = { committedBytes: 80 * MB, usedBytes: 40 * MB };
  const triggers: string[] = [];
  const stopListening = listenToDomainMetrics({ heapCompacted: (trigger) => triggers.push(trigger) });
  try {
    const compactor = new HeapCompactor(silentLogger, {
      collect: () => {
        collections++;
        space = { committedBytes: 42 * MB, usedBytes: 40 * MB };
      },
      oldSpace: () => space,
    });
    // Busy: the loop ran without a pause since the last sample.
    busyFor(50);
    assert.equal(compactor.tick(), 'busy');
    assert.equal(collections, 1);
    assert.equal(compactor.tick(), undefined, 'nothing wasted now');
    space = { committedBytes: 80 * MB, usedBytes: 40 * MB };
    await sleep(100);
    assert.equal(compactor.tick(), undefined, 'quiet and wasteful, but compacted under 10 s ago');
    assert.equal(collections, 1);
    assert.deepEqual(triggers, ['busy']);
  } finally {
    stopListening();
  }
});

test('HeapCompactor compacts a wasteful old space once the loop has been quiet long enough', async () => {
  await loopStarted();
  let collections = 0;
  const compactor = new HeapCompactor(silentLogger, {
    collect: () => collections++,
    oldSpace: () => ({ committedBytes: 46 * MB, usedBytes: 40 * MB }),
    bounds: { ...DEFAULT_COMPACTION_BOUNDS, quietMinMs: 300 },
  });
  busyFor(50);
  assert.equal(compactor.tick(), undefined, '6 MB wasted is too little to compact while busy');
  await sleep(200);
  assert.equal(compactor.tick(), undefined, 'quiet for 200 ms only');
  busyFor(50);
  assert.equal(compactor.tick(), undefined, 'busy again: the quiet starts over');
  await sleep(200);
  assert.equal(compactor.tick(), undefined, 'quiet for 200 ms only');
  await sleep(200);
  assert.equal(compactor.tick(), 'quiet');
  assert.equal(collections, 1);
});
