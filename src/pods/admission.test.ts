import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ImagePullSecretPolicySpec } from '../../generated/index.js';
import {
  admissionResponse,
  decidePod,
  parseAdmissionReview,
  type AdmissionContext,
  type PolicyView,
} from './admission.js';

const OPERATOR_NS = 'regcred-system';

const policy = (name: string, spec: Partial<ImagePullSecretPolicySpec>, deleting = false): PolicyView => ({
  metadata: { name, ...(deleting ? { deletionTimestamp: new Date('2026-01-01T00:00:00Z') } : {}) },
  spec: { secretName: 'regcred', ...spec },
});

const ctx = (over: Partial<AdmissionContext>): AdmissionContext => ({
  namespace: { name: 'team-a', labels: { access: 'yes' } },
  serviceAccountLabels: {},
  policies: [],
  operatorNamespace: OPERATOR_NS,
  ...over,
});

describe('decidePod', () => {
  const teams = policy('teams', { namespaceSelector: { matchLabels: { access: 'yes' } } });
  const cases: Array<{
    name: string;
    pullSecrets?: unknown[];
    ctx: AdmissionContext;
    result: 'mutated' | 'skipped';
    patch?: unknown[];
  }> = [
    {
      name: 'a selected Pod without imagePullSecrets gets the array created',
      ctx: ctx({ policies: [teams] }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'regcred' }] }],
    },
    {
      name: "a selected Pod with others' entries gets ours appended, theirs kept",
      pullSecrets: [{ name: 'mine' }],
      ctx: ctx({ policies: [teams] }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'regcred' } }],
    },
    {
      name: 'an empty imagePullSecrets array is appended to',
      pullSecrets: [],
      ctx: ctx({ policies: [teams] }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'regcred' } }],
    },
    {
      name: 'the entry already present: no patch',
      pullSecrets: [{ name: 'regcred' }],
      ctx: ctx({ policies: [teams] }),
      result: 'skipped',
    },
    {
      name: 'no policy: no patch',
      ctx: ctx({ policies: [] }),
      result: 'skipped',
    },
    {
      name: 'namespace not selected: no patch',
      ctx: ctx({ namespace: { name: 'team-b', labels: {} }, policies: [teams] }),
      result: 'skipped',
    },
    {
      name: 'namespace not known: no patch',
      ctx: ctx({ namespace: undefined, policies: [teams] }),
      result: 'skipped',
    },
    {
      name: '{} never selects kube-system',
      ctx: ctx({ namespace: { name: 'kube-system', labels: {} }, policies: [policy('all', {})] }),
      result: 'skipped',
    },
    {
      name: '{} never selects the operator namespace',
      ctx: ctx({ namespace: { name: OPERATOR_NS, labels: {} }, policies: [policy('all', {})] }),
      result: 'skipped',
    },
    {
      name: 'kube-system named explicitly is selected',
      ctx: ctx({
        namespace: { name: 'kube-system', labels: {} },
        policies: [
          policy('sys', {
            namespaceSelector: {
              matchExpressions: [
                { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['kube-system'] },
              ],
            },
          }),
        ],
      }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'regcred' }] }],
    },
    {
      name: 'ServiceAccount selector not matched: no patch',
      ctx: ctx({
        serviceAccountLabels: { role: 'batch' },
        policies: [policy('web', { serviceAccountSelector: { matchLabels: { role: 'web' } } })],
      }),
      result: 'skipped',
    },
    {
      name: 'ServiceAccount selector matched',
      ctx: ctx({
        serviceAccountLabels: { role: 'web' },
        policies: [policy('web', { serviceAccountSelector: { matchLabels: { role: 'web' } } })],
      }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'regcred' }] }],
    },
    {
      name: 'unknown ServiceAccount is judged by no labels: a selector needing one does not match',
      ctx: ctx({
        serviceAccountLabels: undefined,
        policies: [policy('web', { serviceAccountSelector: { matchLabels: { role: 'web' } } })],
      }),
      result: 'skipped',
    },
    {
      name: 'unknown ServiceAccount is judged by no labels: {} and DoesNotExist match',
      ctx: ctx({
        serviceAccountLabels: undefined,
        policies: [
          policy('all', { secretName: 'a' }),
          policy('untagged', {
            secretName: 'b',
            serviceAccountSelector: { matchExpressions: [{ key: 'opt-out', operator: 'DoesNotExist' }] },
          }),
        ],
      }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'a' }, { name: 'b' }] }],
    },
    {
      name: 'two policies, different names: both added, sorted; a shared name once',
      pullSecrets: [{ name: 'z-theirs' }],
      ctx: ctx({
        policies: [
          policy('p2', { secretName: 'team-b' }),
          policy('p1', { secretName: 'team-a' }),
          policy('p3', { secretName: 'team-a' }),
        ],
      }),
      result: 'mutated',
      patch: [
        { op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'team-a' } },
        { op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'team-b' } },
      ],
    },
    {
      name: 'two policies, one entry present: only the missing one added',
      pullSecrets: [{ name: 'team-b' }],
      ctx: ctx({
        policies: [policy('p1', { secretName: 'team-a' }), policy('p2', { secretName: 'team-b' })],
      }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'team-a' } }],
    },
    {
      name: 'a policy being deleted adds nothing',
      ctx: ctx({ policies: [policy('gone', {}, true)] }),
      result: 'skipped',
    },
    {
      name: 'a policy whose secretName no Secret could have adds nothing (the Pod would be refused)',
      ctx: ctx({
        policies: [
          policy('bad', { secretName: 'Not_Valid' }),
          policy('long', { secretName: 'a'.repeat(254) }),
        ],
      }),
      result: 'skipped',
    },
    {
      name: 'malformed entries in the Pod are kept and do not count as ours',
      pullSecrets: [null, 'regcred', { name: 7 }],
      ctx: ctx({ policies: [teams] }),
      result: 'mutated',
      patch: [{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'regcred' } }],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const decision = decidePod({ imagePullSecrets: c.pullSecrets }, c.ctx);
      assert.equal(decision.result, c.result);
      if (decision.result === 'mutated') assert.deepEqual(decision.patch, c.patch);
    });
  }
});

const review = (request: Record<string, unknown>) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'u-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace: 'team-a',
    object: { spec: { containers: [] } },
    ...request,
  },
});

describe('parseAdmissionReview', () => {
  it('reads namespace, ServiceAccount (default when unset) and existing entries', () => {
    assert.deepEqual(parseAdmissionReview(review({})), {
      kind: 'pod-create',
      pod: { uid: 'u-1', namespace: 'team-a', serviceAccountName: 'default', imagePullSecrets: undefined },
    });
    const parsed = parseAdmissionReview(
      review({ object: { spec: { serviceAccountName: 'builder', imagePullSecrets: [{ name: 'x' }] } } }),
    );
    assert.deepEqual(parsed, {
      kind: 'pod-create',
      pod: {
        uid: 'u-1',
        namespace: 'team-a',
        serviceAccountName: 'builder',
        imagePullSecrets: [{ name: 'x' }],
      },
    });
    const legacy = parseAdmissionReview(review({ object: { spec: { serviceAccount: 'old' } } }));
    assert.equal(legacy.kind === 'pod-create' && legacy.pod.serviceAccountName, 'old');
  });

  const ignored: Array<[string, Record<string, unknown>]> = [
    ['an UPDATE', { operation: 'UPDATE' }],
    ['a subresource', { subResource: 'ephemeralcontainers' }],
    ['another kind', { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }],
    ['no namespace', { namespace: '' }],
    ['no spec', { object: {} }],
  ];
  for (const [name, request] of ignored) {
    it(`ignores ${name} (allowed, no patch)`, () => {
      const parsed = parseAdmissionReview(review(request));
      assert.equal(parsed.kind, 'ignore');
    });
  }

  const invalid: Array<[string, unknown]> = [
    ['a non-object', 'x'],
    ['v1beta1', { ...review({}), apiVersion: 'admission.k8s.io/v1beta1' }],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
    ['no uid', review({ uid: undefined })],
  ];
  for (const [name, body] of invalid) {
    it(`refuses ${name}`, () => assert.equal(parseAdmissionReview(body).kind, 'invalid'));
  }
});

describe('admissionResponse', () => {
  it('always allows; the patch is base64 JSON with patchType JSONPatch', () => {
    const patch = [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'regcred' }] }];
    const answer = admissionResponse('u-1', patch);
    assert.equal(answer.response.allowed, true);
    assert.equal(answer.response.uid, 'u-1');
    assert.equal(answer.response.patchType, 'JSONPatch');
    assert.deepEqual(JSON.parse(Buffer.from(answer.response.patch!, 'base64').toString()), patch);
    assert.deepEqual(admissionResponse('u-2'), {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'u-2', allowed: true },
    });
  });
});
