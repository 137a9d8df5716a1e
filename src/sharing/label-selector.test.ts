import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { labelSelectorMatches } from './label-selector.js';
import type { LabelSelector } from './types.js';

describe('labelSelectorMatches', () => {
  const labels = { team: 'a', tier: '', env: 'prod' };
  const cases: Array<{ name: string; selector: LabelSelector; matches: boolean }> = [
    {
      name: 'matchLabels with the same value matches',
      selector: { matchLabels: { team: 'a' } },
      matches: true,
    },
    {
      name: 'matchLabels with another value does not match',
      selector: { matchLabels: { team: 'b' } },
      matches: false,
    },
    {
      name: 'matchLabels on a missing label does not match',
      selector: { matchLabels: { owner: '' } },
      matches: false,
    },
    {
      name: 'matchLabels with an empty value matches an empty label',
      selector: { matchLabels: { tier: '' } },
      matches: true,
    },
    {
      name: 'all matchLabels must match',
      selector: { matchLabels: { team: 'a', env: 'dev' } },
      matches: false,
    },
    {
      name: 'In matches a listed value',
      selector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'prod'] }] },
      matches: true,
    },
    {
      name: 'In does not match a missing label',
      selector: { matchExpressions: [{ key: 'owner', operator: 'In', values: [''] }] },
      matches: false,
    },
    {
      name: 'NotIn matches a missing label',
      selector: { matchExpressions: [{ key: 'owner', operator: 'NotIn', values: ['x'] }] },
      matches: true,
    },
    {
      name: 'NotIn does not match a listed value',
      selector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      matches: false,
    },
    {
      name: 'Exists matches a label with an empty value',
      selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
      matches: true,
    },
    {
      name: 'Exists does not match a missing label',
      selector: { matchExpressions: [{ key: 'owner', operator: 'Exists' }] },
      matches: false,
    },
    {
      name: 'DoesNotExist matches a missing label',
      selector: { matchExpressions: [{ key: 'owner', operator: 'DoesNotExist' }] },
      matches: true,
    },
    {
      name: 'DoesNotExist does not match a label with an empty value',
      selector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] },
      matches: false,
    },
    {
      name: 'matchLabels and matchExpressions are ANDed',
      selector: {
        matchLabels: { team: 'a' },
        matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }],
      },
      matches: false,
    },
    {
      name: 'an unknown operator never matches',
      selector: { matchExpressions: [{ key: 'env', operator: 'Gt', values: ['1'] }] },
      matches: false,
    },
    {
      name: 'a label inherited from Object.prototype does not exist',
      selector: { matchExpressions: [{ key: 'toString', operator: 'Exists' }] },
      matches: false,
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(labelSelectorMatches(c.selector, labels), c.matches));
});
