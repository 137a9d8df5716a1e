import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { App, Condition } from './types.js';
import {
  type StatusDecision,
  conditionsFor,
  friendlyError,
  mirrorAppStatus,
  reconcileFailedStatus,
} from './pkgi-status.js';

const SEE = 'Error (see .status.usefulErrorMessage for details)';

function app(
  generation: number,
  observedGeneration: number,
  conditions: Condition[],
  usefulErrorMessage = '',
): App {
  return {
    metadata: { name: 'a', namespace: 'ns', generation },
    status: { observedGeneration, conditions, usefulErrorMessage },
  };
}

const cond = (type: string, status = 'True', message?: string): Condition => ({
  type,
  status,
  ...(message ? { message } : {}),
});

describe('mirrorAppStatus', () => {
  const unauthorized =
    'fetching imgpkg bundle: GET https://r/v2/x/manifests/1: UNAUTHORIZED: authentication required';
  const cases: { name: string; app: App | undefined; deleting?: boolean; want: StatusDecision }[] = [
    {
      name: 'no App yet means Reconciling',
      app: undefined,
      want: { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
    },
    {
      name: 'an App whose generation is not observed yet means Reconciling, even if it last succeeded',
      app: app(3, 2, [cond('ReconcileSucceeded')]),
      want: { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
    },
    {
      name: 'an App that is Reconciling means Reconciling',
      app: app(2, 2, [cond('Reconciling')]),
      want: { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
    },
    {
      name: 'a succeeded App means ReconcileSucceeded',
      app: app(2, 2, [cond('ReconcileSucceeded')]),
      want: {
        type: 'ReconcileSucceeded',
        message: '',
        usefulErrorMessage: '',
        friendlyDescription: 'Reconcile succeeded',
      },
    },
    {
      name: "a failed App means ReconcileFailed with the App's usefulErrorMessage",
      app: app(2, 2, [cond('ReconcileFailed', 'True', 'Fetching resources: exit 1')], unauthorized),
      want: {
        type: 'ReconcileFailed',
        message: SEE,
        usefulErrorMessage: unauthorized,
        friendlyDescription: `Reconcile failed: ${SEE}`,
      },
    },
    {
      name: 'an App without conditions means Reconciling',
      app: app(1, 1, []),
      want: { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
    },
    {
      name: 'a condition with status False does not count',
      app: app(1, 1, [cond('ReconcileSucceeded', 'False')]),
      want: { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
    },
    {
      name: 'a paused App that observed its spec keeps its last outcome, described as Canceled/paused',
      app: { ...app(3, 3, [cond('ReconcileFailed')], 'boom'), spec: { paused: true } },
      want: {
        type: 'ReconcileFailed',
        message: SEE,
        usefulErrorMessage: 'boom',
        friendlyDescription: 'Canceled/paused',
      },
    },
    {
      name: 'a canceled App that never reconciled means Reconciling, described as Canceled/paused',
      app: { ...app(1, 1, []), spec: { canceled: true } },
      want: {
        type: 'Reconciling',
        message: '',
        usefulErrorMessage: '',
        friendlyDescription: 'Canceled/paused',
      },
    },
    {
      name: 'a paused App that has not observed the pause yet means Reconciling',
      app: { ...app(4, 3, [cond('ReconcileSucceeded')]), spec: { paused: true } },
      want: { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
    },
    {
      name: 'while deleting, an App that is Deleting means Deleting',
      app: app(2, 2, [cond('Deleting')]),
      deleting: true,
      want: { type: 'Deleting', message: '', usefulErrorMessage: '', friendlyDescription: 'Deleting' },
    },
    {
      name: 'while deleting, an App not yet marked Deleting still means Deleting',
      app: app(2, 2, [cond('ReconcileSucceeded')]),
      deleting: true,
      want: { type: 'Deleting', message: '', usefulErrorMessage: '', friendlyDescription: 'Deleting' },
    },
    {
      name: "while deleting, a failed App delete means DeleteFailed with the App's usefulErrorMessage",
      app: app(2, 2, [cond('DeleteFailed')], 'kapp: Error: deleting: forbidden'),
      deleting: true,
      want: {
        type: 'DeleteFailed',
        message: SEE,
        usefulErrorMessage: 'kapp: Error: deleting: forbidden',
        friendlyDescription: `Delete failed: ${SEE}`,
      },
    },
    {
      name: 'while deleting, a gone App means Deleting',
      app: undefined,
      deleting: true,
      want: { type: 'Deleting', message: '', usefulErrorMessage: '', friendlyDescription: 'Deleting' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(mirrorAppStatus({ app: c.app, deleting: c.deleting }), c.want));
  }
});

describe('friendlyError', () => {
  const cases: { name: string; message: string; want: string }[] = [
    { name: 'a short one-line message is kept', message: 'boom', want: 'Reconcile failed: boom' },
    {
      name: 'a multi-line message keeps the first line and adds ...',
      message: 'first\nsecond',
      want: 'Reconcile failed: first...',
    },
    {
      name: 'a first line of exactly 80 characters is kept whole',
      message: 'y'.repeat(80),
      want: `Reconcile failed: ${'y'.repeat(80)}`,
    },
    {
      name: 'a long first line is cut at 80 characters plus ...',
      message: 'x'.repeat(100),
      want: `Reconcile failed: ${'x'.repeat(80)}...`,
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(friendlyError('Reconcile failed', c.message), c.want));
});

describe('reconcileFailedStatus / conditionsFor', () => {
  it('puts a version selection error in the condition message and usefulErrorMessage', () => {
    const msg = 'Package pkg.test.carvel.dev not found';
    const s = reconcileFailedStatus(msg);
    assert.deepEqual(s, {
      type: 'ReconcileFailed',
      message: msg,
      usefulErrorMessage: msg,
      friendlyDescription: `Reconcile failed: ${msg}`,
    });
    assert.deepEqual(conditionsFor(s), [{ type: 'ReconcileFailed', status: 'True', message: msg }]);
  });

  it('writes exactly one condition without an empty message', () => {
    assert.deepEqual(conditionsFor(mirrorAppStatus({ app: undefined })), [
      { type: 'Reconciling', status: 'True' },
    ]);
  });
});
