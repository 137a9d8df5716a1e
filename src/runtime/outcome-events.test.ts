import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EventRecorder } from './events.js';
import {
  OutcomeEvents,
  outcomeEvent,
  settledFromStatus,
  settledFromStatusAnnotation,
  type SettledOutcome,
} from './outcome-events.js';

const ok: SettledOutcome = { failed: false };
const failed = (message?: string): SettledOutcome =>
  message === undefined ? { failed: true } : { failed: true, message };

describe('outcomeEvent', () => {
  const cases: Array<[string, SettledOutcome | undefined, SettledOutcome, string | undefined, string]> = [
    ['first reconcile succeeds', undefined, ok, undefined, 'Normal ReconcileSucceeded: Reconcile succeeded'],
    ['success again', ok, ok, undefined, 'none'],
    ['first reconcile fails', undefined, failed('boom'), undefined, 'Warning ReconcileFailed: boom'],
    ['a success turns into a failure', ok, failed('boom'), undefined, 'Warning ReconcileFailed: boom'],
    ['the same failure again', failed('boom'), failed('boom'), undefined, 'none'],
    ['a different failure', failed('boom'), failed('bang'), undefined, 'Warning ReconcileFailed: bang'],
    [
      'a failure whose previous text is unknown',
      failed(),
      failed('boom'),
      undefined,
      'Warning ReconcileFailed: boom',
    ],
    [
      'a failure with its own reason',
      ok,
      failed('big'),
      'PlaceholderTooLarge',
      'Warning PlaceholderTooLarge: big',
    ],
    [
      'recovery quotes the failure',
      failed('boom\nsecond line'),
      ok,
      undefined,
      'Normal ReconcileSucceeded: Reconcile succeeded; it had failed with: boom...',
    ],
    [
      'recovery from an unknown failure',
      failed(),
      ok,
      undefined,
      'Normal ReconcileSucceeded: Reconcile succeeded after a failure',
    ],
    ['a failure without text', undefined, failed(''), undefined, 'Warning ReconcileFailed: Reconcile failed'],
  ];
  for (const [name, previous, next, reason, want] of cases) {
    test(name, () => {
      const event = outcomeEvent(previous, next, reason);
      assert.equal(event ? `${event.type} ${event.reason}: ${event.message}` : 'none', want);
    });
  }
  test('without announceFirstSuccess (placeholders) a first success is silent, a recovery is not', () => {
    assert.equal(outcomeEvent(undefined, ok, undefined, false), undefined);
    assert.equal(outcomeEvent(failed('boom'), ok, undefined, false)?.reason, 'ReconcileSucceeded');
    assert.equal(outcomeEvent(undefined, failed('boom'), undefined, false)?.type, 'Warning');
  });
});

describe('settledFromStatus', () => {
  const cases: Array<[string, Parameters<typeof settledFromStatus>[0], SettledOutcome | undefined]> = [
    ['no status', undefined, undefined],
    ['succeeded', { conditions: [{ type: 'ReconcileSucceeded', status: 'True' }] }, ok],
    [
      'failed: usefulErrorMessage wins',
      {
        conditions: [
          {
            type: 'ReconcileFailed',
            status: 'True',
            message: 'Error (see .status.usefulErrorMessage for details)',
          },
        ],
        usefulErrorMessage: 'the real cause',
      },
      failed('the real cause'),
    ],
    [
      'failed: the condition message',
      { conditions: [{ type: 'ReconcileFailed', status: 'True', message: 'm' }] },
      failed('m'),
    ],
    [
      'reconciling after a failed run',
      { conditions: [{ type: 'Reconciling', status: 'True' }], consecutiveReconcileFailures: 2 },
      failed(),
    ],
    [
      'reconciling after a good run',
      { conditions: [{ type: 'Reconciling', status: 'True' }], consecutiveReconcileSuccesses: 1 },
      ok,
    ],
    ['reconciling, never ran', { conditions: [{ type: 'Reconciling', status: 'True' }] }, undefined],
  ];
  for (const [name, status, want] of cases)
    test(name, () => assert.deepEqual(settledFromStatus(status), want));

  test('the placeholder status annotation', () => {
    assert.deepEqual(
      settledFromStatusAnnotation('{"conditions":[{"type":"ReconcileSucceeded","status":"True"}]}'),
      ok,
    );
    assert.deepEqual(
      settledFromStatusAnnotation(
        '{"conditions":[{"type":"ReconcileFailed","status":"True","message":"x"}]}',
      ),
      failed('x'),
    );
    assert.equal(settledFromStatusAnnotation(undefined), undefined);
    assert.equal(settledFromStatusAnnotation('not json'), undefined);
    assert.equal(settledFromStatusAnnotation('{"conditions":3}'), undefined);
  });
});

describe('OutcomeEvents', () => {
  const recorder = () => {
    const sent: string[] = [];
    const events = {
      event: (_obj: KubernetesObject, type: string, reason: string, message: string) =>
        sent.push(`${type} ${reason}: ${message}`),
    } as unknown as EventRecorder;
    return { sent, outcomes: new OutcomeEvents(events) };
  };
  const obj = (uid: string): KubernetesObject => ({
    kind: 'App',
    metadata: { name: 'a', namespace: 'n', uid },
  });

  test('its own last outcome wins over a cached status that lags behind', () => {
    const { sent, outcomes } = recorder();
    outcomes.report('n/a', obj('u1'), undefined, failed('boom'));
    // The cache still shows no status: the same failure is not sent again.
    outcomes.report('n/a', obj('u1'), undefined, failed('boom'));
    outcomes.report('n/a', obj('u1'), failed('boom'), ok);
    outcomes.report('n/a', obj('u1'), failed('boom'), ok);
    assert.deepEqual(sent, [
      'Warning ReconcileFailed: boom',
      'Normal ReconcileSucceeded: Reconcile succeeded; it had failed with: boom',
    ]);
  });

  test('a new object of the same name starts from its own status; forget drops the memory', () => {
    const { sent, outcomes } = recorder();
    outcomes.report('n/a', obj('u1'), undefined, ok);
    outcomes.report('n/a', obj('u2'), undefined, ok);
    outcomes.forget('n/a');
    outcomes.report('n/a', obj('u2'), ok, ok);
    assert.deepEqual(sent, [
      'Normal ReconcileSucceeded: Reconcile succeeded',
      'Normal ReconcileSucceeded: Reconcile succeeded',
    ]);
  });

  test('1000 identical failed reconciles send one Warning', () => {
    const { sent, outcomes } = recorder();
    for (let i = 0; i < 1000; i++) outcomes.report('n/a', obj('u1'), failed('boom'), failed('boom'));
    assert.deepEqual(sent, []);
    outcomes.report('n/a', obj('u1'), failed('boom'), failed('bang'));
    for (let i = 0; i < 1000; i++) outcomes.report('n/a', obj('u1'), failed('boom'), failed('bang'));
    assert.deepEqual(sent, ['Warning ReconcileFailed: bang']);
  });
});
