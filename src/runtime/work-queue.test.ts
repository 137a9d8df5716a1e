import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from './logger.js';
import { WorkQueue, type ReconcileResult } from './work-queue.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function deferred() {
  let release!: () => void;
  const promise = new Promise<void>((r) => (release = r));
  return { promise, release };
}

function queueWith(
  handler: (key: string) => Promise<ReconcileResult | void>,
  concurrency = 4,
  baseDelayMs = 20,
) {
  const q = new WorkQueue({
    name: 'test',
    concurrency,
    handler,
    logger: silentLogger,
    baseDelayMs,
    maxDelayMs: 1000,
    random: () => 1,
  });
  q.start();
  return q;
}

test('many adds of a queued key coalesce into one reconcile', async () => {
  const seen: string[] = [];
  const gate = deferred();
  const q = queueWith(async (key) => {
    if (key === 'blocker') await gate.promise;
    seen.push(key);
  }, 1);
  q.add('blocker');
  for (let i = 0; i < 100; i++) q.add('a');
  gate.release();
  await q.idle();
  assert.deepEqual(seen, ['blocker', 'a']);
});

test('an add while the key is being reconciled runs it once more afterwards, never concurrently', async () => {
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const gate = deferred();
  const q = queueWith(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    runs++;
    if (runs === 1) await gate.promise;
    running--;
  }, 8);
  q.add('k');
  await tick();
  q.add('k');
  q.add('k');
  gate.release();
  await q.idle();
  assert.equal(runs, 2);
  assert.equal(maxRunning, 1);
});

test('concurrency is bounded by the worker count', async () => {
  let running = 0;
  let maxRunning = 0;
  const q = queueWith(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await tick(5);
    running--;
  }, 3);
  for (let i = 0; i < 20; i++) q.add(`k${i}`);
  await q.idle();
  assert.equal(maxRunning, 3);
  assert.equal(q.stats.processed, 20);
});

test('a failing key is retried with growing delays until it succeeds, then its failures are forgotten', async () => {
  const times: number[] = [];
  const q = queueWith(
    async () => {
      times.push(performance.now());
      if (times.length < 4) throw new Error('transient');
    },
    1,
    20,
  );
  q.add('k');
  while (times.length < 4) await tick(10);
  await q.idle();
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  // random() = 1 makes each delay exactly base * 2^attempt: 20, 40, 80 ms.
  assert.ok(gaps[0]! >= 18, `first retry after ${gaps[0]} ms`);
  assert.ok(gaps[1]! >= 38, `second retry after ${gaps[1]} ms`);
  assert.ok(gaps[2]! >= 78, `third retry after ${gaps[2]} ms`);
  assert.equal(q.failuresOf('k'), 0);
  assert.equal(q.stats.failures, 3);
});

test('errors are logged with the key, not swallowed', async () => {
  const logged: Array<Record<string, unknown> | undefined> = [];
  const logger = {
    ...silentLogger,
    error: (_m: string, meta?: Record<string, unknown>) => void logged.push(meta),
  };
  let calls = 0;
  const q = new WorkQueue({
    name: 'test',
    concurrency: 1,
    logger,
    baseDelayMs: 5,
    handler: async () => {
      if (++calls === 1) throw new Error('boom');
    },
  });
  q.start();
  q.add('ns/name');
  while (calls < 2) await tick(5);
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.key, 'ns/name');
  assert.equal(logged[0]!.error, 'boom');
});

test('requeueAfter reconciles the key again after the delay', async () => {
  let runs = 0;
  const q = queueWith(async () => {
    runs++;
    return runs === 1 ? { requeueAfterMs: 30 } : undefined;
  });
  q.add('k');
  await q.idle();
  assert.equal(runs, 1);
  await tick(60);
  await q.idle();
  assert.equal(runs, 2);
});

test('an earlier delayed add wins over a later one', async () => {
  let runs = 0;
  const q = queueWith(async () => void runs++);
  q.addAfter('k', 20);
  q.addAfter('k', 5000);
  await tick(50);
  await q.idle();
  assert.equal(runs, 1);
  await q.shutdown();
});

test('shutdown waits for in-flight reconciles and takes no new keys', async () => {
  const gate = deferred();
  let finished = false;
  let started = 0;
  const q = queueWith(async () => {
    started++;
    await gate.promise;
    finished = true;
  }, 1);
  q.add('a');
  q.add('b');
  await tick();
  const stopped = q.shutdown();
  q.add('c');
  setTimeout(() => gate.release(), 20);
  await stopped;
  assert.equal(finished, true);
  assert.equal(started, 1);
});
