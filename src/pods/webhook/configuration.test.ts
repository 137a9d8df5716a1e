import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyView } from '../admission.js';
import {
  configurationUpdate,
  desiredConfiguration,
  desiredWebhook,
  excludedNamespaces,
  type MutatingWebhookConfiguration,
} from './configuration.js';

const naming = (name: string, ns: string): PolicyView => ({
  metadata: { name },
  spec: {
    secretName: 'regcred',
    namespaceSelector: {
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }],
    },
  },
});
const broad: PolicyView = {
  metadata: { name: 'all' },
  spec: { secretName: 'regcred', namespaceSelector: {} },
};

describe('excludedNamespaces', () => {
  it('kube-system and the operator namespace, unless a live policy names them', () => {
    assert.deepEqual(excludedNamespaces('ops', []), ['kube-system', 'ops']);
    assert.deepEqual(excludedNamespaces('ops', [broad]), ['kube-system', 'ops']);
    assert.deepEqual(excludedNamespaces('ops', [naming('sys', 'kube-system')]), ['ops']);
    assert.deepEqual(excludedNamespaces('ops', [naming('sys', 'kube-system'), naming('me', 'ops')]), []);
    const deleting = {
      ...naming('sys', 'kube-system'),
      metadata: { name: 'sys', deletionTimestamp: new Date(0) },
    };
    assert.deepEqual(excludedNamespaces('ops', [deleting]), ['kube-system', 'ops']);
  });
});

describe('desiredWebhook', () => {
  it('Pods CREATE v1, Ignore on failure, 2 s, no side effects, v1 reviews, the Service or the URL', () => {
    const inCluster = desiredWebhook({
      operatorNamespace: 'ops',
      url: undefined,
      caBundlePem: 'PEM',
      policies: [],
    });
    assert.deepEqual(inCluster.clientConfig, {
      service: { namespace: 'ops', name: 'regcred-operator-webhook', path: '/mutate-pods', port: 443 },
      caBundle: Buffer.from('PEM').toString('base64'),
    });
    assert.deepEqual(inCluster.rules, [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ]);
    assert.equal(inCluster.failurePolicy, 'Ignore');
    assert.equal(inCluster.timeoutSeconds, 2);
    assert.equal(inCluster.sideEffects, 'None');
    assert.deepEqual(inCluster.admissionReviewVersions, ['v1']);
    assert.equal(inCluster.reinvocationPolicy, 'IfNeeded');
    assert.deepEqual(inCluster.objectSelector, {});
    assert.deepEqual(inCluster.namespaceSelector, {
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'ops'] },
      ],
    });
    const outside = desiredWebhook({
      operatorNamespace: 'ops',
      url: 'https://127.0.0.1:9443/mutate-pods',
      caBundlePem: 'PEM',
      policies: [naming('a', 'kube-system'), naming('b', 'ops')],
    });
    assert.deepEqual(outside.clientConfig, {
      url: 'https://127.0.0.1:9443/mutate-pods',
      caBundle: Buffer.from('PEM').toString('base64'),
    });
    assert.deepEqual(outside.namespaceSelector, {});
  });
});

describe('configurationUpdate', () => {
  const desired = desiredConfiguration({
    operatorNamespace: 'ops',
    url: undefined,
    caBundlePem: 'PEM',
    policies: [],
  });
  const stored: MutatingWebhookConfiguration = {
    ...desired,
    metadata: {
      ...desired.metadata,
      resourceVersion: '7',
      labels: { ...desired.metadata!.labels, team: 'platform' },
      annotations: { note: 'x' },
    },
  };
  it('nothing to write when the stored object is as desired, whatever else its metadata holds', () => {
    assert.equal(configurationUpdate(stored, desired), undefined);
  });
  it("puts back a user's change to the webhook, keeping their labels and the resourceVersion", () => {
    const edited = structuredClone(stored);
    edited.webhooks![0]!.failurePolicy = 'Fail';
    edited.webhooks![0]!.matchConditions = [{ name: 'x', expression: 'true' }];
    const update = configurationUpdate(edited, desired)!;
    assert.deepEqual(update.webhooks, desired.webhooks);
    assert.equal(update.metadata?.resourceVersion, '7');
    assert.equal(update.metadata?.labels?.team, 'platform');
    const extra = structuredClone(stored);
    extra.webhooks!.push({ ...extra.webhooks![0]!, name: 'other.example.com' });
    assert.deepEqual(configurationUpdate(extra, desired)?.webhooks, desired.webhooks);
  });
  it('a new caBundle is written', () => {
    const rotated = desiredConfiguration({
      operatorNamespace: 'ops',
      url: undefined,
      caBundlePem: 'PEM2',
      policies: [],
    });
    assert.ok(configurationUpdate(stored, rotated));
  });
});
