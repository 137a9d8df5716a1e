import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from './logger.js';
import { RetryBucket } from './retry-limiter.js';
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

test('a key added by the first handler of an event is reconciled only after the other handlers ran', async () => {
  // An informer calls every handler of one event synchronously, in order.
  const handlers: Array<() => void> = [];
  let bookkeepingDone = false;
  let sawBookkeeping: boolean | undefined;
  const q = queueWith(async () => {
    sawBookkeeping = bookkeepingDone;
  });
  handlers.push(() => q.add('k'));
  handlers.push(() => (bookkeepingDone = true));
  for (const h of handlers) h();
  await q.idle();
  assert.equal(sawBookkeeping, true);
});

test('retries of failing keys are paced by the bucket shared by all queues; sync periods are not', async () => {
  const bucket = new RetryBucket(10, 2);
  let attempts = 0;
  const failing = () =>
    new WorkQueue({
      name: 'failing',
      concurrency: 8,
      logger: silentLogger,
      baseDelayMs: 1,
      maxDelayMs: 10,
      retryBucket: bucket,
      handler: async () => {
        attempts++;
        throw new Error('apiserver unavailable');
      },
    });
  let periodic = 0;
  const syncing = new WorkQueue({
    name: 'syncing',
    concurrency: 1,
    logger: silentLogger,
    retryBucket: bucket,
    handler: async () => {
      periodic++;
      return { requeueAfterMs: 10 };
    },
  });
  const queues = [failing(), failing(), syncing];
  for (const q of queues) q.start();
  for (let i = 0; i < 5; i++) for (const q of queues.slice(0, 2)) q.add(`k${i}`);
  syncing.add('s');
  await tick(500);
  await Promise.all(queues.map((q) => q.shutdown()));
  // 10 first attempts, then the burst of 2 and 10/s for 0.5 s: about 17. Unpaced (1-10 ms) it is hundreds.
  assert.ok(attempts >= 10 && attempts <= 22, `${attempts} attempts`);
  assert.ok(periodic >= 10, `only ${periodic} periodic reconciles`);
});

test('a stale read is retried quickly and quietly, not reported as a failure', async () => {
  const errors: string[] = [];
  const debugs: string[] = [];
  const logger = {
    ...silentLogger,
    error: (m: string) => void errors.push(m),
    debug: (m: string) => void debugs.push(m),
  };
  class Stale extends Error {}
  let calls = 0;
  const q = new WorkQueue({
    name: 'test',
    concurrency: 1,
    logger,
    isStaleRead: (err) => err instanceof Stale,
    handler: async () => {
      if (++calls === 1) throw new Stale('the object has been modified');
    },
  });
  q.start();
  const started = performance.now();
  q.add('ns/name');
  while (calls < 2 && performance.now() - started < 2000) await tick(2);
  assert.equal(calls, 2);
  assert.ok(performance.now() - started < 500, 'retried quickly');
  assert.deepEqual(errors, []);
  assert.deepEqual(debugs, ['object changed since it was cached; reconciling again']);
  assert.equal(q.stats.failures, 0);
  assert.equal(q.stats.staleReads, 1);
});

test('a failure carrying a server-requested wait (Retry-After) is retried no sooner', async () => {
  const times: number[] = [];
  const q = queueWith(async () => {
    times.push(performance.now());
    if (times.length === 1) throw Object.assign(new Error('too many requests'), { retryAfterMs: 150 });
  });
  q.add('k');
  while (times.length < 2) await tick(10);
  assert.ok(times[1]! - times[0]! >= 140, `retried after ${times[1]! - times[0]!} ms`);
});

test('retryUnreachableNow runs at once the keys whose retry waits after an unanswered request, and only those', async () => {
  class Unreachable extends Error {}
  const bucket = new RetryBucket(10, 0);
  const serverUp = { value: false };
  const attempts = new Map<string, number>();
  const q = new WorkQueue({
    name: 'test',
    concurrency: 4,
    logger: silentLogger,
    retryBucket: bucket,
    isUnreachable: (err) => err instanceof Unreachable,
    handler: async (key) => {
      attempts.set(key, (attempts.get(key) ?? 0) + 1);
      if (key === 'refused') throw new Error('HTTP 500: internal error');
      if (!serverUp.value) throw new Unreachable('connect ECONNREFUSED');
    },
  });
  q.start();
  for (const key of ['a', 'b', 'c', 'refused']) q.add(key);
  await tick(30);
  // Paced by an empty bucket at 10/s, the four retries are 100-400 ms away.
  assert.deepEqual([...attempts.values()], [1, 1, 1, 1]);
  serverUp.value = true;
  assert.equal(q.retryUnreachableNow(), 3);
  await q.idle();
  assert.deepEqual(Object.fromEntries(attempts), { a: 2, b: 2, c: 2, refused: 1 });
  assert.equal(q.failuresOf('a'), 0, 'a success forgets the failures');
  assert.equal(q.failuresOf('refused'), 1, 'the answered failure keeps its own delay');
  assert.equal(q.retryUnreachableNow(performance.now() + 5_000), 0, 'nothing is waiting any more');
  await q.shutdown();
});

test('retryUnreachableNow keeps the failure count (a key failing again backs off further) and runs at most once a second', async () => {
  class Unreachable extends Error {}
  let attempts = 0;
  const q = new WorkQueue({
    name: 'test',
    concurrency: 1,
    logger: silentLogger,
    baseDelayMs: 10_000,
    maxDelayMs: 60_000,
    retryBucket: new RetryBucket(1000, 1000),
    isUnreachable: (err) => err instanceof Unreachable,
    handler: async () => {
      attempts++;
      throw new Unreachable('socket hang up');
    },
  });
  q.start();
  q.add('k');
  await tick(20);
  const first = performance.now();
  assert.equal(q.retryUnreachableNow(first), 1);
  await tick(20);
  assert.equal(attempts, 2);
  assert.equal(q.failuresOf('k'), 2);
  assert.equal(q.retryUnreachableNow(first + 500), 0, 'within a second of the last one');
  assert.equal(q.retryUnreachableNow(first + 1_001), 1);
  await tick(20);
  assert.equal(attempts, 3);
  await q.shutdown();
});
