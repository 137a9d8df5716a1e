import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseGoDuration, syncPeriodMs } from './duration.js';

describe('parseGoDuration', () => {
  const cases: [string, number | undefined][] = [
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['300ms', 300],
    ['1m0.5s', 60_500],
    ['.5s', 500],
    ['2h45m30s', 9_930_000],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['0', 0],
    ['-1m', -60_000],
    ['+5s', 5000],
    [' 10m ', 600_000],
    ['', undefined],
    ['10', undefined],
    ['10x', undefined],
    ['m', undefined],
    ['1h 30m', undefined],
    ['1d', undefined],
  ];
  for (const [text, want] of cases) {
    it(`reads ${JSON.stringify(text)} as ${String(want)}`, () => {
      assert.equal(parseGoDuration(text), want);
    });
  }
});

describe('syncPeriodMs', () => {
  const opts = { defaultMs: 600_000, minimumMs: 30_000 };
  it('uses the default when the field is unset', () => {
    assert.equal(syncPeriodMs(undefined, opts), 600_000);
    assert.equal(syncPeriodMs('', opts), 600_000);
  });
  it('uses the value when it parses', () => {
    assert.equal(syncPeriodMs('1h30m', opts), 5_400_000);
  });
  it('raises a period below the minimum to the minimum', () => {
    assert.equal(syncPeriodMs('5s', opts), 30_000);
    assert.equal(syncPeriodMs('0', opts), 30_000);
  });
  it('falls back to the default when the text does not parse', () => {
    assert.equal(syncPeriodMs('ten minutes', opts), 600_000);
  });
});
