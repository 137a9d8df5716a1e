import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatRate, ThroughputGuard, tooSlow, type ThroughputRule } from './throughput.js';

describe('tooSlow', () => {
  const rule: ThroughputRule = { minBytesPerSecond: 10 * 1024, graceMs: 30_000, windowMs: 30_000 };
  const cases: Array<{
    name: string;
    rule?: ThroughputRule;
    bytes: number;
    windowMs: number;
    want?: RegExp;
  }> = [
    { name: 'exactly the minimum is enough', bytes: 10 * 1024 * 30, windowMs: 30_000 },
    { name: 'well above the minimum', bytes: 50 * 1024 * 1024, windowMs: 30_000 },
    {
      name: 'one byte every 300 ms is too slow',
      bytes: 100,
      windowMs: 30_000,
      want: /^transfer too slow: 3 B\/s over the last 30s, below the minimum of 10 KiB\/s$/,
    },
    {
      name: 'nothing at all is too slow',
      bytes: 0,
      windowMs: 30_000,
      want: /0 B\/s over the last 30s/,
    },
    {
      name: 'just below the minimum',
      bytes: 10 * 1024 * 30 - 1,
      windowMs: 30_000,
      want: /10 KiB\/s over the last 30s, below the minimum of 10 KiB\/s/,
    },
    { name: 'a rule of 0 is off', rule: { ...rule, minBytesPerSecond: 0 }, bytes: 0, windowMs: 30_000 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const reason = tooSlow(c.rule ?? rule, c.bytes, c.windowMs);
      if (c.want) assert.match(reason ?? '', c.want);
      else assert.equal(reason, undefined);
    });
  }
});

describe('formatRate', () => {
  const cases: Array<[number, string]> = [
    [3.3, '3 B/s'],
    [1024, '1 KiB/s'],
    [1536, '1.5 KiB/s'],
    [5 * 1024 * 1024, '5 MiB/s'],
  ];
  for (const [rate, text] of cases) it(`${rate} is ${text}`, () => assert.equal(formatRate(rate), text));
});

describe('ThroughputGuard', () => {
  it('aborts once a window after the grace period brings too little, and not before', async () => {
    const reasons: string[] = [];
    const guard = new ThroughputGuard({ minBytesPerSecond: 1000, graceMs: 100, windowMs: 100 }, (r) =>
      reasons.push(r),
    );
    guard.add(5); // during the grace period: not counted
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(reasons, []);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(reasons.length, 1);
    assert.match(reasons[0]!, /transfer too slow: 0 B\/s over the last 100ms/);
    guard.stop();
  });

  it('lets a fast transfer through', async () => {
    const reasons: string[] = [];
    const guard = new ThroughputGuard({ minBytesPerSecond: 1000, graceMs: 20, windowMs: 50 }, (r) =>
      reasons.push(r),
    );
    const feed = setInterval(() => guard.add(500), 10);
    await new Promise((r) => setTimeout(r, 200));
    clearInterval(feed);
    guard.stop();
    assert.deepEqual(reasons, []);
  });
});
