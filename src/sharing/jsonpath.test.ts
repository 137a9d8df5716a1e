import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { goFloatText, parseSelectorKey, readSelectorPath } from './jsonpath.js';

// Expected values were checked against client-go's jsonpath as upstream runs it (`{.<key>}`).
const namespace = {
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: {
    name: 'team-a',
    generation: 1234567,
    creationTimestamp: new Date('2024-01-02T03:04:05.000Z'),
    annotations: {
      'field.cattle.io/projectId': 'c1:p1',
      one: '1',
      'a.b': 'dotted',
      'a b': 'spaced',
      '*': 'star',
      empty: '',
      html: '<&>',
      ab: 'joined',
      'a\\b': 'backslash',
    },
    labels: { 'kubernetes.io/metadata.name': 'team-a', tier: 'gold' },
    ownerReferences: undefined,
  },
  spec: { finalizers: ['kubernetes', 'other'] },
  status: { phase: 'Active', small: 0.00001, ratio: 1.5, ready: true, gone: null },
};

describe('reading a selector key from a Namespace', () => {
  const cases: Array<{ name: string; key: string; value: string }> = [
    { name: 'a dotted annotation path reads the annotation', key: 'metadata.annotations.one', value: '1' },
    {
      name: 'a single-quoted bracket with escaped dots reads a dotted annotation key',
      key: "metadata.annotations['field\\.cattle\\.io/projectId']",
      value: 'c1:p1',
    },
    {
      name: 'escaped dots in a dotted segment read a dotted annotation key',
      key: 'metadata.annotations.field\\.cattle\\.io/projectId',
      value: 'c1:p1',
    },
    {
      name: 'unescaped dots inside single quotes still split the path, as upstream',
      key: "metadata.annotations['field.cattle.io/projectId']",
      value: '',
    },
    {
      name: 'unescaped dots in a bracket split: a.b is a then b',
      key: "metadata.annotations['a.b']",
      value: '',
    },
    { name: 'an escaped dot in a bracket is literal', key: "metadata.annotations['a\\.b']", value: 'dotted' },
    { name: 'an escaped space is part of the field', key: 'metadata.annotations.a\\ b', value: 'spaced' },
    {
      name: 'a doubled backslash is dropped entirely, as client-go drops every backslash',
      key: 'metadata.annotations.a\\\\b',
      value: 'joined',
    },
    {
      name: 'a doubled backslash inside quotes is dropped too',
      key: "metadata.annotations['a\\\\b']",
      value: 'joined',
    },
    { name: 'an escaped star is a field, not a wildcard', key: 'metadata.annotations.\\*', value: 'star' },
    { name: 'one leading dot is accepted', key: '.metadata.name', value: 'team-a' },
    { name: 'a bracket key can follow a top-level field', key: "metadata['name']", value: 'team-a' },
    { name: 'brackets chain with indexes', key: "spec['finalizers'][1]", value: 'other' },
    { name: 'a missing annotation reads as empty', key: 'metadata.annotations.missing', value: '' },
    {
      name: 'an annotation with an empty value reads as empty',
      key: 'metadata.annotations.empty',
      value: '',
    },
    { name: 'a path through a missing map reads as empty', key: 'spec.nothing.here', value: '' },
    { name: 'a field of a string reads as empty', key: 'metadata.name.x', value: '' },
    { name: 'a field of a list reads as empty', key: 'spec.finalizers.x', value: '' },
    { name: 'an index into a map reads as empty', key: 'metadata.annotations[0]', value: '' },
    { name: 'an undefined field reads as empty', key: 'metadata.ownerReferences', value: '' },
    { name: 'an array index reads the element', key: 'spec.finalizers[0]', value: 'kubernetes' },
    { name: 'a negative index counts from the end', key: 'spec.finalizers[-1]', value: 'other' },
    { name: 'an index past the end reads as empty', key: 'spec.finalizers[2]', value: '' },
    { name: 'a negative index before the start reads as empty', key: 'spec.finalizers[-3]', value: '' },
    {
      name: 'a whole map prints as Go JSON with sorted keys',
      key: 'metadata.labels',
      value: '{"kubernetes.io/metadata.name":"team-a","tier":"gold"}',
    },
    { name: 'a whole list prints as JSON', key: 'spec.finalizers', value: '["kubernetes","other"]' },
    { name: 'HTML characters in printed JSON are escaped as Go does', key: 'metadata', value: '' },
    { name: 'a large number prints in Go exponent form', key: 'metadata.generation', value: '1.234567e+06' },
    { name: 'a small number prints in Go exponent form', key: 'status.small', value: '1e-05' },
    { name: 'a fraction prints plainly', key: 'status.ratio', value: '1.5' },
    { name: 'a boolean prints as true', key: 'status.ready', value: 'true' },
    { name: 'a JSON null prints as <nil>, as Go does', key: 'status.gone', value: '<nil>' },
    {
      name: 'a Date prints as RFC 3339 seconds',
      key: 'metadata.creationTimestamp',
      value: '2024-01-02T03:04:05Z',
    },
    { name: 'the object kind is readable', key: 'kind', value: 'Namespace' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const parsed = parseSelectorKey(c.key);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      const value = readSelectorPath(namespace, parsed.segments);
      if (c.key === 'metadata') {
        assert.match(value, /"html":"\\u003c\\u0026\\u003e"/);
        assert.match(value, /"creationTimestamp":"2024-01-02T03:04:05Z"/);
        assert.doesNotMatch(value, /ownerReferences/);
      } else {
        assert.equal(value, c.value);
      }
    });
  }
});

describe('rejecting selector keys outside the supported subset', () => {
  const cases: Array<{ name: string; key: string; error: RegExp }> = [
    { name: 'an empty key is rejected', key: '', error: /it is empty/ },
    { name: 'a lone dot is rejected', key: '.', error: /it is empty/ },
    {
      name: 'a double-quoted bracket is rejected, as upstream cannot parse it',
      key: 'metadata.annotations["one"]',
      error: /double-quoted keys/,
    },
    {
      name: 'an unquoted bracket word is rejected',
      key: 'metadata.annotations[one]',
      error: /invalid index \[one\]/,
    },
    {
      name: 'a $ root is rejected (upstream never matches with it)',
      key: '$.metadata.name',
      error: /expected a field name/,
    },
    {
      name: 'a leading bracket is rejected (upstream never matches with it)',
      key: "['metadata'].name",
      error: /expected a field name/,
    },
    { name: 'recursive descent is rejected', key: 'metadata..name', error: /recursive descent/ },
    { name: 'a dotted wildcard is rejected', key: 'metadata.annotations.*', error: /wildcards/ },
    { name: 'a bracket wildcard is rejected', key: 'spec.finalizers[*]', error: /wildcards/ },
    { name: 'a slice is rejected', key: 'spec.finalizers[0:1]', error: /slices/ },
    { name: 'a union is rejected', key: "metadata.labels['a','b']", error: /unions/ },
    { name: 'a filter is rejected', key: 'status.conditions[?(@.type=="Ready")]', error: /filters/ },
    { name: 'an unescaped space is rejected', key: 'metadata.annotations.a b', error: /unexpected " "/ },
    { name: 'a closing brace is rejected', key: 'metadata.labels.x}', error: /unexpected "}"/ },
    { name: 'an unterminated bracket is rejected', key: "metadata.labels['x'", error: /unterminated \[/ },
    { name: 'a trailing dot is rejected', key: 'metadata.labels.', error: /expected a field name/ },
    { name: 'a lone trailing backslash is rejected', key: 'metadata.labels.x\\', error: /lone backslash/ },
    { name: "an empty quoted key [''] is rejected", key: "metadata.labels['']", error: /empty key/ },
    {
      name: 'a signed index is rejected as upstream rejects it',
      key: 'spec.finalizers[+1]',
      error: /invalid index/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const parsed = parseSelectorKey(c.key);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) {
        assert.match(parsed.error, c.error);
        assert.ok(parsed.error.startsWith(`JSONPath ${JSON.stringify(c.key)}: `), parsed.error);
      }
    });
  }
});

describe('goFloatText', () => {
  const cases: Array<{ name: string; value: number; text: string }> = [
    { name: 'an integer below a million prints plainly', value: 123456, text: '123456' },
    { name: 'a million switches to exponent form', value: 1e6, text: '1e+06' },
    { name: 'a negative large number keeps its sign', value: -1234567, text: '-1.234567e+06' },
    { name: 'a ten-thousandth prints plainly', value: 0.0001, text: '0.0001' },
    { name: 'a hundred-thousandth switches to exponent form', value: 0.00001, text: '1e-05' },
    { name: 'a three-digit exponent is not padded further', value: 1e100, text: '1e+100' },
    { name: 'zero prints as 0', value: 0, text: '0' },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(goFloatText(c.value), c.text));
  }
});
