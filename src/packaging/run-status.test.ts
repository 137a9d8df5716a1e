import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pipelineFailure } from './app-pipeline.js';
import {
  deleteFailedStatus,
  deletingStatus,
  fetchRejectedStatus,
  pausedStatus,
  reconcileFailedStatus,
  reportsSameFailure,
  runCompletedStatus,
  runStartedStatus,
  type RunStatus,
} from './run-status.js';

const t = (s: number) => () => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const unsupported = pipelineFailure('fetch', 'fetch stage 0 (imgpkgBundle): not supported yet');

describe('fetchRejectedStatus', () => {
  it('reports the failure in one condition, usefulErrorMessage, friendlyDescription and status.fetch', () => {
    assert.deepEqual(fetchRejectedStatus(undefined, 1, unsupported, t(5)), {
      observedGeneration: 1,
      conditions: [
        {
          type: 'ReconcileFailed',
          status: 'True',
          message: 'Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
          lastTransitionTime: '2026-01-01T00:00:05Z',
        },
      ],
      friendlyDescription:
        'Reconcile failed: Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
      usefulErrorMessage: 'Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
      fetch: {
        startedAt: '2026-01-01T00:00:05Z',
        updatedAt: '2026-01-01T00:00:05Z',
        exitCode: 1,
        error: 'fetch stage 0 (imgpkgBundle): not supported yet',
      },
      consecutiveReconcileFailures: 1,
      consecutiveReconcileSuccesses: 0,
    });
  });

  it('keeps fields it does not own, such as the last deploy', () => {
    const prev: RunStatus = { deploy: { startedAt: '2025-01-01T00:00:00Z', exitCode: 0, finished: true } };
    assert.deepEqual(fetchRejectedStatus(prev, 2, unsupported, t(1)).deploy, prev.deploy);
  });
});

describe('reportsSameFailure', () => {
  const reported = fetchRejectedStatus(undefined, 3, unsupported, t(0));
  it('is true for the same failure of the same generation', () => {
    assert.equal(reportsSameFailure(reported, 3, unsupported), true);
  });
  it('is false for a new generation', () => {
    assert.equal(reportsSameFailure(reported, 4, unsupported), false);
  });
  it('is false for another failure', () => {
    assert.equal(
      reportsSameFailure(reported, 3, pipelineFailure('fetch', 'fetch stage 1 (git): not supported yet')),
      false,
    );
  });
  it('is false without a status', () => {
    assert.equal(reportsSameFailure(undefined, 3, unsupported), false);
  });
});

describe('run statuses', () => {
  it('starts a run as Reconciling, clears usefulErrorMessage and resets fetch.startedAt', () => {
    const prev = fetchRejectedStatus(undefined, 1, unsupported, t(0));
    const started = runStartedStatus(prev, 2, t(9));
    assert.deepEqual(started.conditions, [
      { type: 'Reconciling', status: 'True', lastTransitionTime: '2026-01-01T00:00:09Z' },
    ]);
    assert.equal(started.friendlyDescription, 'Reconciling');
    assert.equal(started.usefulErrorMessage, undefined);
    assert.equal(started.observedGeneration, 2);
    assert.equal(started.fetch?.startedAt, '2026-01-01T00:00:09Z');
  });

  it('counts consecutive successes and resets failures', () => {
    const prev: RunStatus = { consecutiveReconcileFailures: 3, consecutiveReconcileSuccesses: 0 };
    const done = runCompletedStatus(prev, 1, { fetch: { exitCode: 0 } }, t(1));
    assert.equal(done.friendlyDescription, 'Reconcile succeeded');
    assert.equal(done.consecutiveReconcileSuccesses, 1);
    assert.equal(done.consecutiveReconcileFailures, 0);
  });

  it('keeps lastTransitionTime while the condition type stays', () => {
    const first = reconcileFailedStatus(undefined, 1, 'boom', t(1));
    const again = reconcileFailedStatus(first, 1, 'boom', t(30));
    assert.equal(again.conditions?.[0]?.lastTransitionTime, '2026-01-01T00:00:01Z');
    assert.equal(again.consecutiveReconcileFailures, 1);
  });

  it('keeps the last outcome when paused and only updates the description and generation', () => {
    const prev = fetchRejectedStatus(undefined, 1, unsupported, t(0));
    assert.deepEqual(pausedStatus(prev, 2, 'Canceled/paused'), {
      ...prev,
      observedGeneration: 2,
      friendlyDescription: 'Canceled/paused',
    });
  });

  it('reports Deleting, then DeleteFailed with the error', () => {
    const deleting = deletingStatus(undefined, 4, t(0));
    assert.deepEqual(deleting, {
      observedGeneration: 4,
      conditions: [{ type: 'Deleting', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      friendlyDescription: 'Deleting',
    });
    const failed = deleteFailedStatus(deleting, 4, pipelineFailure('delete', 'no'), t(1));
    assert.equal(failed.friendlyDescription, 'Delete failed: Deleting resources: no');
    assert.equal(failed.usefulErrorMessage, 'Deleting resources: no');
  });
});
