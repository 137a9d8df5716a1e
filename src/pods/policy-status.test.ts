import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { conflictMessage, policyStatus, SECRET_CONFLICT_REASON } from './policy-status.js';

const NOW = () => new Date('2026-11-30T12:00:00.000Z');

describe('policyStatus', () => {
  it('succeeds with counts when nothing conflicts', () => {
    const status = policyStatus(
      undefined,
      3,
      { secretName: 'regcred', namespaces: 4, serviceAccounts: 9, conflicts: [] },
      NOW,
    );
    assert.deepEqual(status, {
      observedGeneration: 3,
      conditions: [
        {
          type: 'ReconcileSucceeded',
          status: 'True',
          reason: 'Applied',
          lastTransitionTime: '2026-11-30T12:00:00Z',
        },
      ],
      friendlyDescription: 'Reconcile succeeded',
      namespaces: 4,
      serviceAccounts: 9,
    });
  });

  it('fails with SecretConflict naming the namespaces while the others proceed (counts kept)', () => {
    const status = policyStatus(
      undefined,
      1,
      {
        secretName: 'regcred',
        namespaces: 3,
        serviceAccounts: 2,
        conflicts: [
          { namespace: 'b', owner: 'other' },
          { namespace: 'a', owner: undefined },
        ],
      },
      NOW,
    );
    const message =
      'Secret regcred exists in 2 selected namespaces and was not created by this policy; it is left alone there ' +
      '(no placeholder, no ServiceAccount entry): a, b (placeholder of policy other)';
    assert.equal(status.conditions?.[0]?.type, 'ReconcileFailed');
    assert.equal(status.conditions?.[0]?.reason, SECRET_CONFLICT_REASON);
    assert.equal(status.conditions?.[0]?.message, message);
    assert.equal(status.usefulErrorMessage, message);
    assert.match(status.friendlyDescription ?? '', /^Reconcile failed: Secret regcred exists in 2 selected/);
    assert.equal(status.namespaces, 3);
    assert.equal(status.serviceAccounts, 2);
  });

  it('keeps lastTransitionTime while the outcome stays, so a steady state compares equal', () => {
    const observed = { secretName: 'regcred', namespaces: 1, serviceAccounts: 1, conflicts: [] };
    const first = policyStatus(undefined, 1, observed, NOW);
    const again = policyStatus(first, 1, observed, () => new Date('2026-12-01T00:00:00Z'));
    assert.deepEqual(again, first);
  });
});

describe('conflictMessage', () => {
  it('names at most 10 namespaces, sorted, and counts the rest', () => {
    const conflicts = Array.from({ length: 25 }, (_, i) => ({
      namespace: `ns-${String(i).padStart(2, '0')}`,
      owner: undefined,
    }));
    const message = conflictMessage('regcred', conflicts.reverse());
    assert.match(message, /exists in 25 selected namespaces/);
    assert.match(message, /: ns-00, ns-01, .*ns-09 and 15 more$/);
    assert.doesNotMatch(message, /ns-10/);
  });

  it('says "1 selected namespace" for one', () => {
    assert.match(
      conflictMessage('x', [{ namespace: 'a', owner: undefined }]),
      /exists in 1 selected namespace and/,
    );
  });
});
