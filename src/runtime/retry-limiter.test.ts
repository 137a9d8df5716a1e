import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBucket, RetryLimiter } from './retry-limiter.js';

test('the retry bucket spends its burst at once, then spaces reservations at qps', () => {
  const cases: Array<{ name: string; reserveAtMs: number[]; expected: number[] }> = [
    { name: 'burst of 3 is free', reserveAtMs: [0, 0, 0], expected: [0, 0, 0] },
    {
      name: 'past the burst, 100 ms apart at 10/s',
      reserveAtMs: [0, 0, 0, 0, 0],
      expected: [0, 0, 0, 100, 200],
    },
    { name: 'time refills tokens', reserveAtMs: [0, 0, 0, 0, 300], expected: [0, 0, 0, 100, 0] },
    {
      name: 'refill stops at the burst',
      reserveAtMs: [0, 10_000, 10_000, 10_000, 10_000],
      expected: [0, 0, 0, 0, 100],
    },
  ];
  for (const c of cases) {
    let now = 0;
    const bucket = new RetryBucket(10, 3, () => now);
    const delays = c.reserveAtMs.map((at) => {
      now = at;
      return bucket.reserve();
    });
    assert.deepEqual(delays, c.expected, c.name);
  }
});

test('a key waits the larger of its own backoff and the shared pace; success resets its backoff', () => {
  let now = 0;
  const bucket = new RetryBucket(10, 1, () => now);
  const limiter = new RetryLimiter({ baseDelayMs: 5, maxDelayMs: 1000, bucket, random: () => 1 });
  // Own backoff 5, 10, 20 ms; the bucket (1 token, then 100 ms apart) dominates after the first.
  assert.deepEqual([limiter.when('a'), limiter.when('a'), limiter.when('b')], [5, 100, 200]);
  assert.equal(limiter.failuresOf('a'), 2);
  now = 10_000;
  // Own backoff alone: 5 * 2^9 = 2560 capped at 1000.
  for (let i = 0; i < 8; i++) limiter.when('c');
  now = 100_000;
  assert.equal(limiter.when('c'), 1000);
  limiter.forget('c');
  now = 200_000;
  assert.equal(limiter.when('c'), 5);
});
