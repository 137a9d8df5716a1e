import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ImagePullSecretPolicySpec } from '../../generated/index.js';
import { policySelectsNamespace, policySelectsServiceAccount } from './policy-selection.js';

const OPERATOR_NS = 'regcred-system';
const policy = (spec: Partial<ImagePullSecretPolicySpec>) => ({ spec: { secretName: 'regcred', ...spec } });

describe('policySelectsNamespace', () => {
  const cases: Array<{
    name: string;
    spec: Partial<ImagePullSecretPolicySpec>;
    ns: string;
    labels?: Record<string, string>;
    selected: boolean;
  }> = [
    { name: 'omitted selector selects an ordinary namespace', spec: {}, ns: 'team-a', selected: true },
    {
      name: '{} selects an ordinary namespace',
      spec: { namespaceSelector: {} },
      ns: 'team-a',
      selected: true,
    },
    {
      name: '{} never selects kube-system',
      spec: { namespaceSelector: {} },
      ns: 'kube-system',
      selected: false,
    },
    {
      name: 'omitted selector never selects the operator namespace',
      spec: {},
      ns: OPERATOR_NS,
      selected: false,
    },
    {
      name: 'a label selector matching kube-system by another label does not select it',
      spec: { namespaceSelector: { matchLabels: { tier: 'system' } } },
      ns: 'kube-system',
      labels: { tier: 'system' },
      selected: false,
    },
    {
      name: 'kube-system named by matchLabels on the name label is selected',
      spec: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } },
      ns: 'kube-system',
      selected: true,
    },
    {
      name: 'the operator namespace named by an In expression is selected',
      spec: {
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['a', OPERATOR_NS] },
          ],
        },
      },
      ns: OPERATOR_NS,
      selected: true,
    },
    {
      name: 'NotIn on the name label does not count as naming it',
      spec: {
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['other'] }],
        },
      },
      ns: 'kube-system',
      selected: false,
    },
    {
      name: 'matchLabels must match',
      spec: { namespaceSelector: { matchLabels: { 'registry-access': 'true' } } },
      ns: 'team-a',
      labels: { 'registry-access': 'false' },
      selected: false,
    },
    {
      name: 'matchLabels matching selects',
      spec: { namespaceSelector: { matchLabels: { 'registry-access': 'true' } } },
      ns: 'team-a',
      labels: { 'registry-access': 'true' },
      selected: true,
    },
    {
      name: 'the name label is implied even when missing from the object',
      spec: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'team-a' } } },
      ns: 'team-a',
      selected: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(
        policySelectsNamespace(policy(c.spec), { name: c.ns, labels: c.labels ?? {} }, OPERATOR_NS),
        c.selected,
      );
    });
  }
});

describe('policySelectsServiceAccount', () => {
  const cases: Array<{
    name: string;
    spec: Partial<ImagePullSecretPolicySpec>;
    labels: Record<string, string>;
    selected: boolean;
  }> = [
    { name: 'omitted selector selects every ServiceAccount', spec: {}, labels: {}, selected: true },
    {
      name: '{} selects every ServiceAccount',
      spec: { serviceAccountSelector: {} },
      labels: {},
      selected: true,
    },
    {
      name: 'matchLabels must match',
      spec: { serviceAccountSelector: { matchLabels: { pulls: 'yes' } } },
      labels: {},
      selected: false,
    },
    {
      name: 'DoesNotExist selects an unlabelled ServiceAccount',
      spec: { serviceAccountSelector: { matchExpressions: [{ key: 'opt-out', operator: 'DoesNotExist' }] } },
      labels: {},
      selected: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(policySelectsServiceAccount(policy(c.spec), c.labels), c.selected));
  }
});
