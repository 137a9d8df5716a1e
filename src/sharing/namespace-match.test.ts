import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  exportDependsOnNamespaceMetadata,
  isExcludedFromWildcard,
  matchExportToNamespace,
  namespaceUpdateChangesMatch,
  type MatchKind,
} from './namespace-match.js';
import type { NamespaceInfo, NamespaceInput, SecretExportSpec } from './types.js';

const EXCLUDED = 'secretgen.carvel.dev/excluded-from-wildcard-matching';
const PROJECT = "metadata.annotations['field\\.cattle\\.io/projectId']";

function ns(
  name: string,
  annotations: Record<string, string> = {},
  labels: Record<string, string> = {},
): NamespaceInfo {
  return { name, labels, annotations };
}

describe('matchExportToNamespace', () => {
  const cases: Array<{
    name: string;
    spec: SecretExportSpec;
    namespace: NamespaceInput;
    match: MatchKind | undefined;
  }> = [
    // explicit and wildcard
    {
      name: 'a namespace named in toNamespace is matched explicitly',
      spec: { toNamespace: 'b' },
      namespace: ns('b'),
      match: 'explicit',
    },
    {
      name: 'a namespace named in toNamespaces is matched explicitly',
      spec: { toNamespaces: ['a', 'b'] },
      namespace: ns('b'),
      match: 'explicit',
    },
    {
      name: 'a namespace not named is not matched',
      spec: { toNamespaces: ['a'] },
      namespace: ns('b'),
      match: undefined,
    },
    { name: 'names are compared exactly', spec: { toNamespace: 'B' }, namespace: ns('b'), match: undefined },
    {
      name: '"*" in toNamespace matches any namespace as a wildcard',
      spec: { toNamespace: '*' },
      namespace: ns('b'),
      match: 'wildcard',
    },
    {
      name: '"*" in toNamespaces matches any namespace as a wildcard',
      spec: { toNamespaces: ['*'] },
      namespace: ns('b'),
      match: 'wildcard',
    },
    {
      name: 'the exclusion annotation blocks a wildcard match',
      spec: { toNamespaces: ['*'] },
      namespace: ns('b', { [EXCLUDED]: 'true' }),
      match: undefined,
    },
    {
      name: 'the exclusion annotation with an empty value still blocks a wildcard match',
      spec: { toNamespace: '*' },
      namespace: ns('b', { [EXCLUDED]: '' }),
      match: undefined,
    },
    {
      name: 'an excluded namespace is still matched by an explicit name',
      spec: { toNamespaces: ['*', 'b'] },
      namespace: ns('b', { [EXCLUDED]: '' }),
      match: 'explicit',
    },
    {
      name: 'an excluded namespace is still matched by the JSONPath selector',
      spec: {
        toNamespace: '*',
        dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'In', values: ['c1:p1'] }],
      },
      namespace: ns('b', { [EXCLUDED]: '', 'field.cattle.io/projectId': 'c1:p1' }),
      match: 'selector',
    },
    {
      name: 'an excluded namespace is still matched by the label selector',
      spec: { toNamespace: '*', toNamespacesLabelSelector: { matchLabels: { team: 'a' } } },
      namespace: ns('b', { [EXCLUDED]: '' }, { team: 'a' }),
      match: 'selector',
    },
    {
      name: 'explicit is preferred over wildcard',
      spec: { toNamespaces: ['*', 'b'] },
      namespace: ns('b'),
      match: 'explicit',
    },
    {
      name: 'explicit is preferred over selector',
      spec: {
        toNamespace: 'b',
        dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'In', values: ['b'] }],
      },
      namespace: ns('b'),
      match: 'explicit',
    },
    {
      name: 'the upstream example: listed namespaces plus a projectId selector reach a third namespace',
      spec: {
        toNamespaces: ['sg-test2', 'sg-test3'],
        dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'In', values: ['cluster1:project1'] }],
      },
      namespace: ns('sg-test4', { 'field.cattle.io/projectId': 'cluster1:project1' }),
      match: 'selector',
    },
    // JSONPath operators
    {
      name: 'In does not match another value',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'In', values: ['c1:p1'] }] },
      namespace: ns('b', { 'field.cattle.io/projectId': 'c1:p2' }),
      match: undefined,
    },
    {
      name: 'In with an empty string among the values matches a missing key, as upstream reads it as ""',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'In', values: [''] }] },
      namespace: ns('b'),
      match: 'selector',
    },
    {
      name: 'NotIn matches a missing key, since "" is not among the values',
      spec: {
        dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'NotIn', values: ['cluster1:project1'] }],
      },
      namespace: ns('b'),
      match: 'selector',
    },
    {
      name: 'NotIn does not match a listed value',
      spec: {
        dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'NotIn', values: ['cluster1:project1'] }],
      },
      namespace: ns('b', { 'field.cattle.io/projectId': 'cluster1:project1' }),
      match: undefined,
    },
    {
      name: 'Exists matches a non-empty annotation',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'Exists' }] },
      namespace: ns('b', { 'field.cattle.io/projectId': 'x' }),
      match: 'selector',
    },
    {
      name: 'Exists does not match an annotation with an empty value',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'Exists' }] },
      namespace: ns('b', { 'field.cattle.io/projectId': '' }),
      match: undefined,
    },
    {
      name: 'Exists does not match a missing annotation',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'Exists' }] },
      namespace: ns('b'),
      match: undefined,
    },
    {
      name: 'DoesNotExist matches an annotation with an empty value',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'DoesNotExist' }] },
      namespace: ns('b', { 'field.cattle.io/projectId': '' }),
      match: 'selector',
    },
    {
      name: 'DoesNotExist matches a missing annotation',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'DoesNotExist' }] },
      namespace: ns('b'),
      match: 'selector',
    },
    {
      name: 'DoesNotExist does not match a non-empty annotation',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'DoesNotExist' }] },
      namespace: ns('b', { 'field.cattle.io/projectId': 'x' }),
      match: undefined,
    },
    {
      name: 'two ANDed entries match when both hold',
      spec: {
        dangerousToNamespacesSelector: [
          { key: 'metadata.annotations.one', operator: 'In', values: ['1'] },
          { key: 'metadata.annotations.two', operator: 'In', values: ['2'] },
        ],
      },
      namespace: ns('b', { one: '1', two: '2' }),
      match: 'selector',
    },
    {
      name: 'two ANDed entries do not match when only the first holds',
      spec: {
        dangerousToNamespacesSelector: [
          { key: 'metadata.annotations.one', operator: 'In', values: ['1'] },
          { key: 'metadata.annotations.two', operator: 'In', values: ['2'] },
        ],
      },
      namespace: ns('b', { one: '1' }),
      match: undefined,
    },
    {
      name: 'the JSONPath selector reads the name from a NamespaceInfo',
      spec: { dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'In', values: ['b'] }] },
      namespace: ns('b'),
      match: 'selector',
    },
    {
      name: 'the JSONPath selector reads any field of a whole Namespace object',
      spec: { dangerousToNamespacesSelector: [{ key: 'status.phase', operator: 'In', values: ['Active'] }] },
      namespace: { metadata: { name: 'b' }, status: { phase: 'Active' } },
      match: 'selector',
    },
    {
      name: 'a JSONPath selector on labels of a whole Namespace object',
      spec: {
        dangerousToNamespacesSelector: [
          { key: "metadata.labels['kubernetes\\.io/metadata\\.name']", operator: 'In', values: ['b'] },
        ],
      },
      namespace: { metadata: { name: 'b', labels: { 'kubernetes.io/metadata.name': 'b' } } },
      match: 'selector',
    },
    {
      name: 'unescaped dots in a bracket key do not read a dotted annotation, as upstream',
      spec: {
        dangerousToNamespacesSelector: [
          { key: "metadata.annotations['field.cattle.io/projectId']", operator: 'Exists' },
        ],
      },
      namespace: ns('b', { 'field.cattle.io/projectId': 'x' }),
      match: undefined,
    },
    // label selector and validity
    {
      name: 'the label selector matches on labels',
      spec: {
        toNamespacesLabelSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }] },
      },
      namespace: { metadata: { name: 'b', labels: { team: 'a' } } },
      match: 'selector',
    },
    {
      name: 'the label selector does not look at annotations',
      spec: { toNamespacesLabelSelector: { matchLabels: { team: 'a' } } },
      namespace: ns('b', { team: 'a' }),
      match: undefined,
    },
    {
      name: 'either selector may match: the label selector matches though the JSONPath one does not',
      spec: {
        dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'Exists' }],
        toNamespacesLabelSelector: { matchLabels: { team: 'a' } },
      },
      namespace: ns('b', {}, { team: 'a' }),
      match: 'selector',
    },
    {
      name: 'an invalid export matches nothing, not even a namespace it names',
      spec: { toNamespaces: ['b', ''] },
      namespace: ns('b'),
      match: undefined,
    },
    {
      name: 'an export with an unparsable selector key matches nothing, not even a namespace it names',
      spec: {
        toNamespace: 'b',
        dangerousToNamespacesSelector: [{ key: 'metadata.annotations["x"]', operator: 'Exists' }],
      },
      namespace: ns('b'),
      match: undefined,
    },
    {
      name: 'an export with an empty label selector matches nothing',
      spec: { toNamespace: '*', toNamespacesLabelSelector: {} },
      namespace: ns('b'),
      match: undefined,
    },
  ];
  for (const c of cases)
    it(c.name, () => assert.equal(matchExportToNamespace({ spec: c.spec }, c.namespace), c.match));

  it('one spec object matched against many namespaces answers for each (its checks are reused)', () => {
    const spec: SecretExportSpec = { toNamespaces: ['a', '*'], toNamespace: 'c' };
    assert.deepEqual(
      [ns('a'), ns('b'), ns('c'), ns('d', { [EXCLUDED]: '' })].map((n) =>
        matchExportToNamespace({ spec }, n),
      ),
      ['explicit', 'wildcard', 'explicit', undefined],
    );
    // An invalid spec stays invalid when asked again, for every namespace.
    const invalid: SecretExportSpec = { toNamespaces: ['a', ''] };
    assert.deepEqual(
      [ns('a'), ns('a'), ns('b')].map((n) => matchExportToNamespace({ spec: invalid }, n)),
      [undefined, undefined, undefined],
    );
  });

  it('a changed export (a new spec object, as the informer delivers it) is matched by its new spec', () => {
    const before: SecretExportSpec = { toNamespaces: ['a'] };
    assert.equal(matchExportToNamespace({ spec: before }, ns('b')), undefined);
    const after: SecretExportSpec = { toNamespaces: ['a', 'b'] };
    assert.equal(matchExportToNamespace({ spec: after }, ns('b')), 'explicit');
    assert.equal(matchExportToNamespace({ spec: before }, ns('b')), undefined);
  });

  it('a long toNamespaces list matches by name', () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `ns-${i}`);
    const spec: SecretExportSpec = { toNamespaces: names };
    assert.equal(matchExportToNamespace({ spec }, ns('ns-9999')), 'explicit');
    assert.equal(matchExportToNamespace({ spec }, ns('ns-10000')), undefined);
  });
});

describe('isExcludedFromWildcard', () => {
  const cases: Array<{ name: string; namespace: NamespaceInput; excluded: boolean }> = [
    {
      name: 'a namespace without the annotation is not excluded',
      namespace: ns('a', { other: '' }),
      excluded: false,
    },
    { name: 'an empty value excludes', namespace: ns('a', { [EXCLUDED]: '' }), excluded: true },
    {
      name: 'the value "false" still excludes, as any value does',
      namespace: ns('a', { [EXCLUDED]: 'false' }),
      excluded: true,
    },
    {
      name: 'a whole Namespace object is read too',
      namespace: { metadata: { name: 'a', annotations: { [EXCLUDED]: 'x' } } },
      excluded: true,
    },
    {
      name: 'a whole Namespace object without annotations is not excluded',
      namespace: { metadata: { name: 'a' } },
      excluded: false,
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(isExcludedFromWildcard(c.namespace), c.excluded));
});

describe('exportDependsOnNamespaceMetadata', () => {
  const cases: Array<{ name: string; spec: SecretExportSpec; depends: boolean }> = [
    {
      name: 'explicit names only do not depend on metadata',
      spec: { toNamespaces: ['a', 'b'] },
      depends: false,
    },
    { name: 'a wildcard depends on the exclusion annotation', spec: { toNamespace: '*' }, depends: true },
    {
      name: 'a JSONPath selector depends on metadata',
      spec: {
        toNamespace: 'a',
        dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'Exists' }],
      },
      depends: true,
    },
    {
      name: 'a label selector depends on metadata',
      spec: { toNamespacesLabelSelector: { matchLabels: { a: 'b' } } },
      depends: true,
    },
  ];
  for (const c of cases)
    it(c.name, () => assert.equal(exportDependsOnNamespaceMetadata({ spec: c.spec }), c.depends));
});

describe('namespaceUpdateChangesMatch', () => {
  const cases: Array<{
    name: string;
    spec: SecretExportSpec;
    before: NamespaceInput;
    after: NamespaceInput;
    changes: boolean;
  }> = [
    {
      name: 'adding the exclusion annotation revokes a wildcard match',
      spec: { toNamespace: '*' },
      before: ns('a'),
      after: ns('a', { [EXCLUDED]: '' }),
      changes: true,
    },
    {
      name: 'removing the exclusion annotation restores a wildcard match',
      spec: { toNamespace: '*' },
      before: ns('a', { [EXCLUDED]: '' }),
      after: ns('a'),
      changes: true,
    },
    {
      name: 'an unrelated annotation does not matter',
      spec: { toNamespace: '*' },
      before: ns('a'),
      after: ns('a', { other: 'x' }),
      changes: false,
    },
    {
      name: 'excluding an explicitly named namespace changes nothing',
      spec: { toNamespaces: ['*', 'a'] },
      before: ns('a'),
      after: ns('a', { [EXCLUDED]: '' }),
      changes: false,
    },
    {
      name: 'a label change that makes the selector match matters',
      spec: { toNamespacesLabelSelector: { matchLabels: { team: 'a' } } },
      before: ns('a', {}, { team: 'b' }),
      after: ns('a', {}, { team: 'a' }),
      changes: true,
    },
    {
      name: 'an annotation change that stops the JSONPath selector matching matters',
      spec: { dangerousToNamespacesSelector: [{ key: PROJECT, operator: 'Exists' }] },
      before: ns('a', { 'field.cattle.io/projectId': 'x' }),
      after: ns('a', { 'field.cattle.io/projectId': '' }),
      changes: true,
    },
    {
      name: 'a wildcard match turning into a selector match is reported as a change of kind',
      spec: { toNamespace: '*', toNamespacesLabelSelector: { matchLabels: { team: 'a' } } },
      before: ns('a', {}, { team: 'a' }),
      after: ns('a', { [EXCLUDED]: '' }, { team: 'a' }),
      changes: true,
    },
  ];
  for (const c of cases)
    it(c.name, () =>
      assert.equal(namespaceUpdateChangesMatch({ spec: c.spec }, c.before, c.after), c.changes),
    );
});
