import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  MSG_EMPTY_NAMESPACE,
  MSG_NO_TARGET,
  MSG_VALUES_FORBIDDEN,
  MSG_VALUES_REQUIRED,
  exportWeight,
  staticToNamespaces,
  validateExportSpec,
  validationErrorText,
} from './export-rules.js';
import type { SecretExportSpec } from './types.js';

describe('upstream validation messages', () => {
  it('the messages are upstream strings, character for character', () => {
    assert.equal(
      MSG_NO_TARGET,
      'Expected to have at least one non-empty to namespace or to namespace annotation',
    );
    assert.equal(MSG_EMPTY_NAMESPACE, 'Expected to namespace to be non-empty');
    assert.equal(MSG_VALUES_REQUIRED, "Values must be specified when `operator` is 'In' or 'NotIn'");
    assert.equal(
      MSG_VALUES_FORBIDDEN,
      "Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    );
  });
});

describe('validateExportSpec', () => {
  const cases: Array<{ name: string; spec: SecretExportSpec; errors: Array<string | RegExp> }> = [
    { name: 'a single toNamespace is valid', spec: { toNamespace: 'b' }, errors: [] },
    { name: 'a wildcard in toNamespaces is valid', spec: { toNamespaces: ['*'] }, errors: [] },
    { name: 'an empty spec has no target', spec: {}, errors: [MSG_NO_TARGET] },
    { name: 'an empty toNamespace alone has no target', spec: { toNamespace: '' }, errors: [MSG_NO_TARGET] },
    {
      name: 'an empty toNamespaces list alone has no target',
      spec: { toNamespaces: [] },
      errors: [MSG_NO_TARGET],
    },
    {
      name: 'an empty dangerousToNamespacesSelector list alone has no target',
      spec: { dangerousToNamespacesSelector: [] },
      errors: [MSG_NO_TARGET],
    },
    {
      name: 'each empty toNamespaces entry is reported once',
      spec: { toNamespaces: ['', 'a', ''] },
      errors: [MSG_EMPTY_NAMESPACE, MSG_EMPTY_NAMESPACE],
    },
    {
      name: 'In without values is rejected',
      spec: { dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'In' }] },
      errors: [MSG_VALUES_REQUIRED],
    },
    {
      name: 'NotIn with an empty values list is rejected',
      spec: { dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'NotIn', values: [] }] },
      errors: [MSG_VALUES_REQUIRED],
    },
    {
      name: 'Exists with values is rejected',
      spec: { dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'Exists', values: ['x'] }] },
      errors: [MSG_VALUES_FORBIDDEN],
    },
    {
      name: 'DoesNotExist with values is rejected',
      spec: {
        dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'DoesNotExist', values: ['x'] }],
      },
      errors: [MSG_VALUES_FORBIDDEN],
    },
    {
      name: 'a valid selector alone is a target',
      spec: {
        dangerousToNamespacesSelector: [
          { key: "metadata.annotations['field\\.cattle\\.io/projectId']", operator: 'In', values: ['c1:p1'] },
        ],
      },
      errors: [],
    },
    {
      name: 'problems are listed in upstream order: namespaces, then selector entries',
      spec: {
        toNamespaces: [''],
        dangerousToNamespacesSelector: [
          { key: 'metadata.name', operator: 'Exists', values: ['x'] },
          { key: 'metadata.name', operator: 'In' },
        ],
      },
      errors: [MSG_EMPTY_NAMESPACE, MSG_VALUES_FORBIDDEN, MSG_VALUES_REQUIRED],
    },
    {
      name: 'beyond: an unknown operator is reported',
      spec: { dangerousToNamespacesSelector: [{ key: 'metadata.name', operator: 'Equals', values: ['a'] }] },
      errors: [
        'Expected dangerousToNamespacesSelector[0].operator to be one of In, NotIn, Exists, DoesNotExist',
      ],
    },
    {
      name: 'beyond: a key outside the JSONPath subset is reported with its index',
      spec: {
        toNamespace: 'a',
        dangerousToNamespacesSelector: [
          { key: 'metadata.name', operator: 'Exists' },
          { key: 'metadata.annotations["x"]', operator: 'Exists' },
        ],
      },
      errors: [
        /^Invalid dangerousToNamespacesSelector\[1\]\.key: JSONPath "metadata\.annotations\[\\"x\\"\]": double-quoted/,
      ],
    },
    {
      name: 'beyond: an empty selector key is reported',
      spec: { dangerousToNamespacesSelector: [{ key: '', operator: 'DoesNotExist' }] },
      errors: [/^Invalid dangerousToNamespacesSelector\[0\]\.key: .*it is empty/],
    },
    {
      name: 'beyond: a label selector alone is a target',
      spec: { toNamespacesLabelSelector: { matchLabels: { team: 'a' } } },
      errors: [],
    },
    {
      name: 'beyond: an empty label selector is rejected instead of reaching every namespace',
      spec: { toNamespacesLabelSelector: {} },
      errors: [
        /^Expected toNamespacesLabelSelector to have at least one matchLabels or matchExpressions entry/,
      ],
    },
    {
      name: 'beyond: label selector expression problems name the expression',
      spec: {
        toNamespacesLabelSelector: {
          matchExpressions: [
            { key: 'a', operator: 'In' },
            { key: '', operator: 'Exists', values: ['x'] },
            { key: 'c', operator: 'Gt', values: ['1'] },
          ],
        },
      },
      errors: [
        "toNamespacesLabelSelector.matchExpressions[0]: Values must be specified when `operator` is 'In' or 'NotIn'",
        'Expected toNamespacesLabelSelector.matchExpressions[1].key to be non-empty',
        "toNamespacesLabelSelector.matchExpressions[1]: Values may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'Expected toNamespacesLabelSelector.matchExpressions[2].operator to be one of In, NotIn, Exists, DoesNotExist',
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const errors = validateExportSpec(c.spec);
      assert.equal(errors.length, c.errors.length, JSON.stringify(errors));
      c.errors.forEach((expected, i) => {
        if (typeof expected === 'string') assert.equal(errors[i], expected);
        else assert.match(errors[i] ?? '', expected);
      });
    });
  }
});

describe('validationErrorText', () => {
  const cases: Array<{ name: string; messages: string[]; text: string | undefined }> = [
    { name: 'no messages give no text', messages: [], text: undefined },
    { name: 'one message is listed under the title', messages: ['a'], text: 'Validation errors:\n- a' },
    {
      name: 'several messages are listed one per line',
      messages: ['a', 'b'],
      text: 'Validation errors:\n- a\n- b',
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(validationErrorText(c.messages), c.text));

  it('an empty spec gives upstream’s full failure message', () => {
    assert.equal(
      validationErrorText(validateExportSpec({})),
      'Validation errors:\n- Expected to have at least one non-empty to namespace or to namespace annotation',
    );
  });
});

describe('staticToNamespaces', () => {
  const cases: Array<{ name: string; spec: SecretExportSpec; namespaces: string[] }> = [
    {
      name: 'toNamespaces come first, then toNamespace',
      spec: { toNamespace: 'c', toNamespaces: ['a', 'b'] },
      namespaces: ['a', 'b', 'c'],
    },
    {
      name: 'an empty toNamespace is left out',
      spec: { toNamespace: '', toNamespaces: ['a'] },
      namespaces: ['a'],
    },
    {
      name: 'empty toNamespaces entries are kept so validation sees them',
      spec: { toNamespaces: [''] },
      namespaces: [''],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(staticToNamespaces(c.spec), c.namespaces));
});

describe('exportWeight', () => {
  const cases: Array<{ name: string; value: string | undefined; weight: number }> = [
    { name: 'no annotation weighs 0', value: undefined, weight: 0 },
    { name: 'an integer is read', value: '10', weight: 10 },
    { name: 'a fraction is read', value: '1.5', weight: 1.5 },
    { name: 'a negative weight is read', value: '-2', weight: -2 },
    { name: 'an exponent is read', value: '1E3', weight: 1000 },
    { name: 'a leading dot is read', value: '.5', weight: 0.5 },
    { name: 'a trailing dot is read', value: '5.', weight: 5 },
    { name: 'underscores between digits are read, as Go does', value: '1_000.5', weight: 1000.5 },
    { name: 'a hex float is read, as Go does', value: '0x1p-2', weight: 0.25 },
    { name: 'infinity is read, as Go does', value: '+Inf', weight: Infinity },
    { name: 'an empty value is ignored', value: '', weight: 0 },
    { name: 'surrounding spaces make it invalid, so it is ignored', value: ' 1', weight: 0 },
    { name: 'a word is ignored', value: 'heavy', weight: 0 },
    { name: 'a decimal comma is ignored', value: '1,5', weight: 0 },
    { name: 'a doubled underscore is ignored', value: '1__0', weight: 0 },
    { name: 'a hex integer without exponent is ignored, as Go rejects it', value: '0x10', weight: 0 },
    { name: 'an out-of-range value is ignored, as Go reports a range error', value: '1e400', weight: 0 },
    { name: 'NaN is read as 0 because it cannot be ordered', value: 'NaN', weight: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const annotations: Record<string, string> =
        c.value === undefined ? {} : { 'secretgen.carvel.dev/weight': c.value };
      assert.equal(exportWeight(annotations), c.weight);
    });
  }
});
