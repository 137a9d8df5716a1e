import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  byAge,
  planNamespacePlaceholders,
  type ExistingSecret,
  type SelectingPolicy,
} from './placeholder-ownership.js';

const secret = (name: string, policy?: string): ExistingSecret => ({ name, resourceVersion: '1', policy });

describe('planNamespacePlaceholders', () => {
  const cases: Array<{
    name: string;
    policies: SelectingPolicy[];
    secrets: ExistingSecret[];
    create?: Record<string, string>;
    remove?: string[];
    owned?: Record<string, string>;
    conflicts?: Array<[policy: string, owner: string | undefined]>;
  }> = [
    {
      name: 'a selecting policy creates its missing placeholder and owns it',
      policies: [{ name: 'teams', secretName: 'regcred' }],
      secrets: [],
      create: { regcred: 'teams' },
      owned: { teams: 'regcred' },
    },
    {
      name: 'its own labelled placeholder is owned, nothing to create',
      policies: [{ name: 'teams', secretName: 'regcred' }],
      secrets: [secret('regcred', 'teams')],
      owned: { teams: 'regcred' },
    },
    {
      name: 'a Secret without the label is a conflict and never removed',
      policies: [{ name: 'teams', secretName: 'regcred' }],
      secrets: [secret('regcred')],
      conflicts: [['teams', undefined]],
    },
    {
      name: "another selecting policy's placeholder of the same name is a conflict naming it",
      policies: [
        { name: 'first', secretName: 'regcred' },
        { name: 'second', secretName: 'regcred' },
      ],
      secrets: [secret('regcred', 'first')],
      owned: { first: 'regcred' },
      conflicts: [['second', 'first']],
    },
    {
      name: 'two policies wanting one missing name: the first (oldest) creates it, the other conflicts',
      policies: [
        { name: 'older', secretName: 'regcred' },
        { name: 'newer', secretName: 'regcred' },
      ],
      secrets: [],
      create: { regcred: 'older' },
      owned: { older: 'regcred' },
      conflicts: [['newer', 'older']],
    },
    {
      name: 'two policies with different names each get their own',
      policies: [
        { name: 'a', secretName: 'one' },
        { name: 'b', secretName: 'two' },
      ],
      secrets: [secret('two', 'b')],
      create: { one: 'a' },
      owned: { a: 'one', b: 'two' },
    },
    {
      name: 'a placeholder of a policy that no longer selects the namespace is removed',
      policies: [],
      secrets: [secret('regcred', 'teams'), secret('other')],
      remove: ['regcred'],
    },
    {
      name: 'a changed secretName removes the old placeholder and creates the new one',
      policies: [{ name: 'teams', secretName: 'new' }],
      secrets: [secret('old', 'teams')],
      create: { new: 'teams' },
      owned: { teams: 'new' },
      remove: ['old'],
    },
    {
      name: 'a leftover of another policy is removed first, without a conflict; the name is taken next time',
      policies: [{ name: 'next', secretName: 'regcred' }],
      secrets: [secret('regcred', 'gone')],
      remove: ['regcred'],
      owned: { next: 'regcred' },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const byName = new Map(c.secrets.map((s) => [s.name, s]));
      const plan = planNamespacePlaceholders(
        c.policies,
        (name) => byName.get(name),
        c.secrets.filter((s) => s.policy !== undefined),
      );
      assert.deepEqual(Object.fromEntries(plan.create), c.create ?? {}, 'create');
      assert.deepEqual(
        plan.remove.map((s) => s.name),
        c.remove ?? [],
        'remove',
      );
      assert.deepEqual(Object.fromEntries(plan.owned), c.owned ?? {}, 'owned');
      assert.deepEqual(
        plan.conflicts.map((x) => [x.policy, x.owner]),
        c.conflicts ?? [],
        'conflicts',
      );
    });
  }
});

describe('byAge', () => {
  it('orders by creation time, then name', () => {
    const items = [
      { name: 'b', createdAt: '2026-01-02T00:00:00Z' },
      { name: 'c', createdAt: '2026-01-01T00:00:00Z' },
      { name: 'a', createdAt: '2026-01-02T00:00:00Z' },
    ];
    assert.deepEqual(
      items.sort(byAge).map((i) => i.name),
      ['c', 'a', 'b'],
    );
  });
});
