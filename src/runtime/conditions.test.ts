import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commonStatus, friendlyDescription, jsonEqual, nextCondition, shortenError } from './conditions.js';

const at = (iso: string) => () => new Date(iso);

test('friendly descriptions follow the upstream wording', () => {
  const cases: Array<[Parameters<typeof friendlyDescription>, string]> = [
    [['ReconcileSucceeded'], 'Reconcile succeeded'],
    [['Reconciling'], 'Reconciling'],
    [['Deleting'], 'Deleting'],
    [['ReconcileFailed', 'Missing exported secret'], 'Reconcile failed: Missing exported secret'],
    [
      ['ReconcileFailed', 'Validation errors:\n- Expected to namespace to be non-empty'],
      'Reconcile failed: Validation errors:...',
    ],
    [['ReconcileFailed', 'x'.repeat(81)], `Reconcile failed: ${'x'.repeat(80)}...`],
    [['ReconcileFailed', 'y'.repeat(80)], `Reconcile failed: ${'y'.repeat(80)}`],
  ];
  for (const [args, expected] of cases) assert.equal(friendlyDescription(...args), expected);
});

test('a long first line is cut at 80 characters even when more lines follow', () => {
  assert.equal(shortenError(`${'z'.repeat(90)}\nmore`), `${'z'.repeat(80)}...`);
});

test('lastTransitionTime is kept while the condition type stays the same', () => {
  const first = nextCondition(undefined, { type: 'ReconcileSucceeded' }, at('2026-01-01T00:00:00.123Z'));
  assert.deepEqual(first, [
    { type: 'ReconcileSucceeded', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' },
  ]);
  const again = nextCondition(first, { type: 'ReconcileSucceeded' }, at('2026-02-02T00:00:00Z'));
  assert.equal(again[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  const failed = nextCondition(
    again,
    { type: 'ReconcileFailed', message: 'boom' },
    at('2026-03-03T00:00:00Z'),
  );
  assert.deepEqual(failed, [
    { type: 'ReconcileFailed', status: 'True', message: 'boom', lastTransitionTime: '2026-03-03T00:00:00Z' },
  ]);
});

test('a failed status carries the error as usefulErrorMessage and observedGeneration', () => {
  const status = commonStatus(
    undefined,
    4,
    { type: 'ReconcileFailed', message: 'Missing exported secret' },
    at('2026-01-01T00:00:00Z'),
  );
  assert.deepEqual(status, {
    observedGeneration: 4,
    conditions: [
      {
        type: 'ReconcileFailed',
        status: 'True',
        message: 'Missing exported secret',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ],
    friendlyDescription: 'Reconcile failed: Missing exported secret',
    usefulErrorMessage: 'Missing exported secret',
  });
});

test('jsonEqual ignores key order and undefined fields but not values', () => {
  assert.equal(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }), true);
  assert.equal(jsonEqual({ a: 1 }, { a: 2 }), false);
  assert.equal(jsonEqual([1, 2], [2, 1]), false);
  assert.equal(jsonEqual({ a: 1 }, { a: 1, b: null }), false);
});
