import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failureDelayMs, lastRunTime, reconcileTiming, type TimedStatus } from './reconcile-timer.js';

const T0 = '2026-01-01T00:00:00Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000);
const MIN10 = 600_000;

function status(extra: Partial<TimedStatus> = {}): TimedStatus {
  return {
    observedGeneration: 1,
    conditions: [{ type: 'ReconcileSucceeded', status: 'True' }],
    fetch: { startedAt: T0, updatedAt: T0 },
    ...extra,
  };
}

describe('reconcileTiming', () => {
  it('runs at once when .spec changed (generation not observed)', () => {
    assert.deepEqual(reconcileTiming({ generation: 2, status: status(), syncPeriodMs: MIN10, now: at(1) }), {
      due: true,
      reason: 'generation',
    });
  });

  it('runs at once when a dependency changed', () => {
    assert.deepEqual(
      reconcileTiming({ generation: 1, status: status(), syncPeriodMs: MIN10, now: at(1), forced: true }),
      { due: true, reason: 'forced' },
    );
  });

  it('runs at once when the status records no run', () => {
    assert.deepEqual(
      reconcileTiming({
        generation: 1,
        status: { observedGeneration: 1 },
        syncPeriodMs: MIN10,
        now: at(1),
      }),
      { due: true, reason: 'never-run' },
    );
  });

  it('waits for the rest of the sync period after a success', () => {
    assert.deepEqual(
      reconcileTiming({ generation: 1, status: status(), syncPeriodMs: MIN10, now: at(100) }),
      { due: false, afterMs: 500_000 },
    );
  });

  it('runs again once the sync period has passed', () => {
    assert.deepEqual(
      reconcileTiming({ generation: 1, status: status(), syncPeriodMs: MIN10, now: at(600) }),
      { due: true, reason: 'period' },
    );
  });

  it('retries a failure after 2^failures seconds', () => {
    const failed = status({
      conditions: [{ type: 'ReconcileFailed', status: 'True', message: 'x' }],
      consecutiveReconcileFailures: 3,
    });
    assert.deepEqual(reconcileTiming({ generation: 1, status: failed, syncPeriodMs: MIN10, now: at(5) }), {
      due: false,
      afterMs: 3000,
    });
    assert.deepEqual(reconcileTiming({ generation: 1, status: failed, syncPeriodMs: MIN10, now: at(8) }), {
      due: true,
      reason: 'failure-backoff',
    });
  });

  it('treats a run left Reconciling for a minute as interrupted, but not a fresh one', () => {
    const reconciling = status({ conditions: [{ type: 'Reconciling', status: 'True' }] });
    assert.deepEqual(
      reconcileTiming({ generation: 1, status: reconciling, syncPeriodMs: MIN10, now: at(5) }),
      { due: false, afterMs: 595_000 },
    );
    assert.deepEqual(
      reconcileTiming({ generation: 1, status: reconciling, syncPeriodMs: MIN10, now: at(60) }),
      { due: true, reason: 'interrupted' },
    );
  });
});

describe('failureDelayMs', () => {
  it('doubles per consecutive failure and is capped by the sync period', () => {
    assert.equal(failureDelayMs(1, MIN10), 2000);
    assert.equal(failureDelayMs(4, MIN10), 16_000);
    assert.equal(failureDelayMs(10, MIN10), MIN10);
    assert.equal(failureDelayMs(500, MIN10), MIN10);
  });
  it('uses the sync period when no failure is counted', () => {
    assert.equal(failureDelayMs(0, MIN10), MIN10);
    assert.equal(failureDelayMs(undefined, MIN10), MIN10);
  });
});

describe('lastRunTime', () => {
  it('is the latest stage timestamp', () => {
    assert.equal(
      lastRunTime({
        fetch: { startedAt: T0, updatedAt: '2026-01-01T00:00:05Z' },
        deploy: { startedAt: '2026-01-01T00:00:07Z' },
        template: { updatedAt: 'garbage' },
      }),
      Date.parse('2026-01-01T00:00:07Z'),
    );
  });
  it('is undefined without stage timestamps', () => {
    assert.equal(lastRunTime({}), undefined);
    assert.equal(lastRunTime(undefined), undefined);
  });

  it('waits the whole sync period, not the failure backoff, for a failure that awaits an input change', () => {
    const failed = status({
      conditions: [{ type: 'ReconcileFailed', status: 'True' }],
      consecutiveReconcileFailures: 1,
    });
    const input = { generation: 1, status: failed, syncPeriodMs: MIN10 };
    assert.deepEqual(reconcileTiming({ ...input, now: at(5) }), { due: true, reason: 'failure-backoff' });
    assert.deepEqual(reconcileTiming({ ...input, now: at(5), failureAwaitsInputChange: true }), {
      due: false,
      afterMs: MIN10 - 5000,
    });
    assert.deepEqual(reconcileTiming({ ...input, now: at(600), failureAwaitsInputChange: true }), {
      due: true,
      reason: 'period',
    });
    assert.deepEqual(
      reconcileTiming({ ...input, now: at(5), failureAwaitsInputChange: true, forced: true }),
      {
        due: true,
        reason: 'forced',
      },
    );
  });
});
