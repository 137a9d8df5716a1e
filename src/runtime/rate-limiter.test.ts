import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from './backoff.js';
import { InFlightLimit, TokenBucket } from './rate-limiter.js';

test('the bucket lets a burst through at once, then paces at qps', async () => {
  // Slow rates so that a loaded machine's scheduling delays cannot blur burst and pacing.
  const bucket = new TokenBucket(10, 5);
  const started = performance.now();
  await Promise.all(Array.from({ length: 5 }, () => bucket.take()));
  // Paced, the 5 would take 400 ms or more.
  assert.ok(performance.now() - started < 200, 'burst should not wait');
  await Promise.all(Array.from({ length: 3 }, () => bucket.take()));
  const elapsed = performance.now() - started;
  // 3 more tokens at 10/s need ~300 ms.
  assert.ok(elapsed >= 280, `3 tokens past the burst took only ${elapsed} ms`);
  assert.ok(elapsed < 1500, `3 tokens past the burst took ${elapsed} ms`);
});

test('a qps of zero disables limiting', async () => {
  const bucket = new TokenBucket(0, 1);
  const started = performance.now();
  await Promise.all(Array.from({ length: 1000 }, () => bucket.take()));
  // Limited to 1/s this would take over 16 minutes.
  assert.ok(performance.now() - started < 1000);
});

test('backoff doubles per attempt within [d/2, d] and stops at the cap', () => {
  const cases: Array<{ attempt: number; random: number; expected: number }> = [
    { attempt: 0, random: 1, expected: 100 },
    { attempt: 0, random: 0, expected: 50 },
    { attempt: 3, random: 1, expected: 800 },
    { attempt: 10, random: 1, expected: 5000 },
    { attempt: 50, random: 0, expected: 2500 },
  ];
  for (const c of cases)
    assert.equal(
      backoffDelay(c.attempt, 100, 5000, () => c.random),
      c.expected,
      JSON.stringify(c),
    );
});

test('InFlightLimit: at most `limit` hold a slot, waiters are served in order, a double release frees one slot', async () => {
  const limit = new InFlightLimit(2);
  const first = await limit.acquire();
  const second = await limit.acquire();
  const order: string[] = [];
  const third = limit.acquire().then((release) => (order.push('third'), release));
  const fourth = limit.acquire().then((release) => (order.push('fourth'), release));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  assert.equal(limit.inFlight, 2);
  first();
  first();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['third']);
  second();
  (await third)();
  (await fourth)();
  assert.equal(limit.inFlight, 0);
  const unlimited = new InFlightLimit(0);
  await Promise.all(Array.from({ length: 100 }, () => unlimited.acquire()));
  assert.equal(unlimited.inFlight, 100);
});
