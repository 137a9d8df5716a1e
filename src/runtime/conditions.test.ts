import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  commonStatus,
  fitStatus,
  friendlyDescription,
  jsonEqual,
  MAX_MESSAGE_CHARS,
  nextCondition,
  shortenError,
  truncateMessage,
} from './conditions.js';

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

test('truncateMessage keeps short texts and cuts long ones with a count of what was cut, within max', () => {
  const cases: Array<[string, string, number, string]> = [
    ['short text unchanged', 'abc', 100, 'abc'],
    ['exactly max unchanged', 'x'.repeat(100), 100, 'x'.repeat(100)],
    ['one over max', 'x'.repeat(101), 100, `${'x'.repeat(77)}… (24 more characters)`],
    ['much longer', 'y'.repeat(10_000), 100, `${'y'.repeat(75)}… (9925 more characters)`],
    // '😀' is two UTF-16 units; the cut falls between them and moves one back.
    [
      'no half surrogate pair',
      `${'a'.repeat(76)}😀${'b'.repeat(48)}`,
      100,
      `${'a'.repeat(76)}… (50 more characters)`,
    ],
  ];
  for (const [name, text, max, want] of cases) {
    const got = truncateMessage(text, max);
    assert.equal(got, want, name);
    assert.ok(got.length <= max, `${name}: ${got.length} > ${max}`);
  }
  assert.equal(truncateMessage('z'.repeat(MAX_MESSAGE_CHARS)).length, MAX_MESSAGE_CHARS);
  assert.match(truncateMessage('z'.repeat(MAX_MESSAGE_CHARS + 1)), /… \(\d+ more characters\)$/);
});

test('commonStatus truncates the condition message and usefulErrorMessage', () => {
  const long = `bad repository entry; `.repeat(5000);
  const status = commonStatus(
    undefined,
    1,
    { type: 'ReconcileFailed', message: long },
    at('2026-01-01T00:00:00Z'),
  );
  assert.equal(status.conditions?.[0]?.message, truncateMessage(long));
  assert.equal(status.usefulErrorMessage, truncateMessage(long));
  assert.ok(status.usefulErrorMessage.length <= MAX_MESSAGE_CHARS);
  assert.match(status.usefulErrorMessage, /… \(\d+ more characters\)$/);
});

test('fitStatus truncates every long string at any depth and is idempotent', () => {
  const long = 'e'.repeat(MAX_MESSAGE_CHARS * 3);
  const status = {
    observedGeneration: 3,
    usefulErrorMessage: long,
    conditions: [{ type: 'ReconcileFailed', status: 'True', message: long }],
    fetch: { stderr: long, exitCode: 1, ok: false, nothing: null },
    friendlyDescription: 'short',
  };
  const fitted = fitStatus(status);
  assert.deepEqual(fitted, {
    observedGeneration: 3,
    usefulErrorMessage: truncateMessage(long),
    conditions: [{ type: 'ReconcileFailed', status: 'True', message: truncateMessage(long) }],
    fetch: { stderr: truncateMessage(long), exitCode: 1, ok: false, nothing: null },
    friendlyDescription: 'short',
  });
  assert.equal(status.usefulErrorMessage, long, 'the input is not modified');
  // What was written compares equal to the next fitted status: a steady long message writes nothing.
  assert.ok(jsonEqual(fitStatus(fitted), fitted));
  assert.ok(jsonEqual(fitted, fitStatus(status)));
});
