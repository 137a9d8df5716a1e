import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  formatAddedRecord,
  parseAddedRecord,
  planServiceAccountEntries,
  type AddedRecord,
} from './service-account-entries.js';

const refs = (...names: string[]) => names.map((name) => ({ name }));

describe('planServiceAccountEntries', () => {
  const cases: Array<{
    name: string;
    list?: string[];
    record?: AddedRecord;
    desired: Record<string, string>;
    want: string[];
    wantRecord: AddedRecord;
    listChanged: boolean;
    recordChanged: boolean;
  }> = [
    {
      name: 'appends a missing entry to an absent list and records it',
      desired: { teams: 'regcred' },
      want: ['regcred'],
      wantRecord: { teams: 'regcred' },
      listChanged: true,
      recordChanged: true,
    },
    {
      name: 'appends after the entries of others, keeping their order',
      list: ['b', 'a'],
      desired: { teams: 'regcred' },
      want: ['b', 'a', 'regcred'],
      wantRecord: { teams: 'regcred' },
      listChanged: true,
      recordChanged: true,
    },
    {
      name: 'an entry the user listed already is left alone and not recorded (no write)',
      list: ['regcred'],
      desired: { teams: 'regcred' },
      want: ['regcred'],
      wantRecord: {},
      listChanged: false,
      recordChanged: false,
    },
    {
      name: 'an entry already added and recorded means no write',
      list: ['x', 'regcred'],
      record: { teams: 'regcred' },
      desired: { teams: 'regcred' },
      want: ['x', 'regcred'],
      wantRecord: { teams: 'regcred' },
      listChanged: false,
      recordChanged: false,
    },
    {
      name: 'a recorded entry the user removed is added again',
      list: ['x'],
      record: { teams: 'regcred' },
      desired: { teams: 'regcred' },
      want: ['x', 'regcred'],
      wantRecord: { teams: 'regcred' },
      listChanged: true,
      recordChanged: false,
    },
    {
      name: 'removal takes out only the recorded entry, keeping the order of the others',
      list: ['a', 'regcred', 'b'],
      record: { teams: 'regcred' },
      desired: {},
      want: ['a', 'b'],
      wantRecord: {},
      listChanged: true,
      recordChanged: true,
    },
    {
      name: "removal never takes out the user's own entry (not recorded)",
      list: ['regcred', 'b'],
      record: {},
      desired: {},
      want: ['regcred', 'b'],
      wantRecord: {},
      listChanged: false,
      recordChanged: false,
    },
    {
      name: 'a duplicate the user added after the policy survives removal (one occurrence removed)',
      list: ['regcred', 'a', 'regcred'],
      record: { teams: 'regcred' },
      desired: {},
      want: ['regcred', 'a'],
      wantRecord: {},
      listChanged: true,
      recordChanged: true,
    },
    {
      name: 'a changed secretName: the old recorded entry goes, the new one is appended',
      list: ['a', 'old'],
      record: { teams: 'old' },
      desired: { teams: 'new' },
      want: ['a', 'new'],
      wantRecord: { teams: 'new' },
      listChanged: true,
      recordChanged: true,
    },
    {
      name: 'several policies each manage their own entry',
      list: ['one'],
      record: { p1: 'one' },
      desired: { p1: 'one', p2: 'two' },
      want: ['one', 'two'],
      wantRecord: { p1: 'one', p2: 'two' },
      listChanged: true,
      recordChanged: true,
    },
    {
      name: "one policy's removal leaves the other policy's entry",
      list: ['one', 'two'],
      record: { p1: 'one', p2: 'two' },
      desired: { p2: 'two' },
      want: ['two'],
      wantRecord: { p2: 'two' },
      listChanged: true,
      recordChanged: true,
    },
    {
      name: 'an entry recorded for a policy that let go of it passes to the policy that now wants it',
      list: ['shared'],
      record: { old: 'shared' },
      desired: { new: 'shared' },
      want: ['shared'],
      wantRecord: { new: 'shared' },
      listChanged: false,
      recordChanged: true,
    },
    {
      name: 'a recorded entry for a policy that no longer exists is removed',
      list: ['gone', 'mine'],
      record: { deleted: 'gone' },
      desired: {},
      want: ['mine'],
      wantRecord: {},
      listChanged: true,
      recordChanged: true,
    },
    {
      name: 'a recorded name already absent needs no list write, only the record',
      list: ['mine'],
      record: { teams: 'regcred' },
      desired: {},
      want: ['mine'],
      wantRecord: {},
      listChanged: false,
      recordChanged: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planServiceAccountEntries(
        { imagePullSecrets: c.list && refs(...c.list), record: c.record ?? {} },
        new Map(Object.entries(c.desired)),
      );
      assert.deepEqual(
        plan.imagePullSecrets.map((e) => e.name),
        c.want,
      );
      assert.deepEqual(plan.record, c.wantRecord);
      assert.equal(plan.listChanged, c.listChanged, 'listChanged');
      assert.equal(plan.recordChanged, c.recordChanged, 'recordChanged');
    });
  }

  it('keeps entries it does not manage as they are (objects untouched)', () => {
    const odd = { name: 'x', extra: 1 } as { name: string };
    const plan = planServiceAccountEntries({ imagePullSecrets: [odd], record: {} }, new Map([['p', 'y']]));
    assert.equal(plan.imagePullSecrets[0], odd);
  });
});

describe('added record annotation', () => {
  const cases: Array<{ name: string; value: string | undefined; want: AddedRecord }> = [
    { name: 'absent', value: undefined, want: {} },
    { name: 'a record', value: '{"a":"regcred","b":"other"}', want: { a: 'regcred', b: 'other' } },
    { name: 'not JSON reads as nothing recorded', value: 'regcred', want: {} },
    { name: 'an array reads as nothing recorded', value: '["regcred"]', want: {} },
    { name: 'non-string values are dropped', value: '{"a":1,"b":"x","c":""}', want: { b: 'x' } },
    {
      name: 'an oversized value reads as nothing recorded',
      value: `{"a":"${'x'.repeat(70_000)}"}`,
      want: {},
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(parseAddedRecord(c.value), c.want));

  it('formats sorted, and nothing for an empty record', () => {
    assert.equal(formatAddedRecord({ b: '2', a: '1' }), '{"a":"1","b":"2"}');
    assert.equal(formatAddedRecord({}), undefined);
    assert.deepEqual(parseAddedRecord(formatAddedRecord({ p: 'regcred' })), { p: 'regcred' });
  });
});
