import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from './backoff.js';
import { TokenBucket } from './rate-limiter.js';

test('the bucket lets a burst through at once, then paces at qps', async () => {
  const bucket = new TokenBucket(100, 5);
  const started = performance.now();
  await Promise.all(Array.from({ length: 5 }, () => bucket.take()));
  assert.ok(performance.now() - started < 15, 'burst should not wait');
  await Promise.all(Array.from({ length: 10 }, () => bucket.take()));
  const elapsed = performance.now() - started;
  // 10 more tokens at 100/s need ~100 ms.
  assert.ok(elapsed >= 85, `10 tokens past the burst took only ${elapsed} ms`);
  assert.ok(elapsed < 400, `10 tokens past the burst took ${elapsed} ms`);
});

test('a qps of zero disables limiting', async () => {
  const bucket = new TokenBucket(0, 1);
  const started = performance.now();
  await Promise.all(Array.from({ length: 1000 }, () => bucket.take()));
  assert.ok(performance.now() - started < 50);
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
