import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  MISSING_FROM_NAMESPACE_MESSAGE,
  NO_MATCH_MESSAGE,
  decideImport,
  isImportCopy,
  type DesiredSecret,
  type ExistingSecret,
  type ImportDecision,
  type SecretImportInput,
} from './import.js';
import type { NamespaceInput, SecretExportInput, SecretInput } from './types.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const EXCLUDED = 'secretgen.carvel.dev/excluded-from-wildcard-matching';

const importObj: SecretImportInput = {
  namespace: 'app',
  name: 'creds',
  uid: 'import-uid',
  labels: { from: 'import' },
  annotations: { note: 'import' },
  spec: { fromNamespace: 'src' },
};
const exportObj: SecretExportInput = {
  namespace: 'src',
  name: 'creds',
  annotations: {},
  spec: { toNamespace: 'app' },
};
const source: SecretInput = {
  namespace: 'src',
  name: 'creds',
  type: 'Opaque',
  data: { user: b64('u'), pass: b64('p') },
  resourceVersion: '7',
};
const appNamespace: NamespaceInput = { name: 'app', labels: {}, annotations: {} };
const ourRef = {
  apiVersion: 'secretgen.carvel.dev/v1alpha1',
  kind: 'SecretImport',
  name: 'creds',
  uid: 'import-uid',
  controller: true,
  blockOwnerDeletion: true,
};
const desired: DesiredSecret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: {
    namespace: 'app',
    name: 'creds',
    labels: { from: 'import' },
    annotations: { note: 'import' },
    ownerReferences: [ourRef],
  },
  type: 'Opaque',
  data: { user: b64('u'), pass: b64('p') },
};
const currentCopy: ExistingSecret = {
  namespace: 'app',
  name: 'creds',
  uid: 'copy-uid',
  resourceVersion: '42',
  type: 'Opaque',
  data: { pass: b64('p'), user: b64('u') },
  labels: { from: 'import' },
  annotations: { note: 'import' },
  ownerReferences: [ourRef],
};
const copyTarget = { namespace: 'app', name: 'creds', uid: 'copy-uid', resourceVersion: '42' };
const succeeded = { type: 'ReconcileSucceeded' } as const;
const noMatch = { type: 'ReconcileFailed', message: NO_MATCH_MESSAGE } as const;
const notControlled = {
  type: 'ReconcileFailed',
  message: 'Secret app/creds already exists and is not controlled by this SecretImport; it is left untouched',
} as const;

interface Case {
  name: string;
  importObj?: SecretImportInput;
  exports?: SecretExportInput[];
  source?: SecretInput | null;
  namespace?: NamespaceInput;
  existing?: ExistingSecret;
  decision: ImportDecision;
}

const cases: Case[] = [
  // matching
  {
    name: 'a matching export with no copy yet creates the copy with the import’s labels, annotations and owner',
    decision: { action: 'create', secret: desired, status: succeeded },
  },
  {
    name: 'a wildcard export allows a namespace that is not excluded',
    exports: [{ ...exportObj, spec: { toNamespaces: ['*'] } }],
    decision: { action: 'create', secret: desired, status: succeeded },
  },
  {
    name: 'a selector export reaches a namespace excluded from wildcards',
    exports: [
      { ...exportObj, spec: { toNamespace: '*', toNamespacesLabelSelector: { matchLabels: { team: 'a' } } } },
    ],
    namespace: { name: 'app', labels: { team: 'a' }, annotations: { [EXCLUDED]: '' } },
    decision: { action: 'create', secret: desired, status: succeeded },
  },
  {
    name: 'any Secret type may be imported',
    source: { ...source, type: 'kubernetes.io/tls', data: { 'tls.crt': b64('c'), 'tls.key': b64('k') } },
    decision: {
      action: 'create',
      secret: { ...desired, type: 'kubernetes.io/tls', data: { 'tls.crt': b64('c'), 'tls.key': b64('k') } },
      status: succeeded,
    },
  },
  {
    name: 'the ownerReference takes the import’s own apiVersion and kind when given',
    importObj: {
      ...importObj,
      apiVersion: 'secretgen.carvel.dev/v1alpha1',
      kind: 'SecretImport',
      uid: 'other-uid',
    },
    decision: {
      action: 'create',
      secret: {
        ...desired,
        metadata: { ...desired.metadata, ownerReferences: [{ ...ourRef, uid: 'other-uid' }] },
      },
      status: succeeded,
    },
  },
  {
    name: 'an import without labels or annotations gives a copy with none',
    importObj: { ...importObj, labels: undefined, annotations: undefined },
    decision: {
      action: 'create',
      secret: { ...desired, metadata: { ...desired.metadata, labels: {}, annotations: {} } },
      status: succeeded,
    },
  },
  // keeping the copy in line
  {
    name: 'a copy that is already current is left alone',
    existing: currentCopy,
    decision: { action: 'none', status: succeeded },
  },
  {
    name: 'an edited value in the copy is reverted, with the copy’s resourceVersion for a safe update',
    existing: { ...currentCopy, data: { ...currentCopy.data, pass: b64('edited') } },
    decision: {
      action: 'update',
      secret: { ...desired, metadata: { ...desired.metadata, resourceVersion: '42' } },
      status: succeeded,
    },
  },
  {
    name: 'a key removed at the source disappears from the copy',
    existing: { ...currentCopy, data: { ...currentCopy.data, old: b64('gone') } },
    decision: {
      action: 'update',
      secret: { ...desired, metadata: { ...desired.metadata, resourceVersion: '42' } },
      status: succeeded,
    },
  },
  {
    name: 'a label added to the copy is reverted',
    existing: { ...currentCopy, labels: { from: 'import', extra: 'x' } },
    decision: {
      action: 'update',
      secret: { ...desired, metadata: { ...desired.metadata, resourceVersion: '42' } },
      status: succeeded,
    },
  },
  {
    name: 'an annotation changed on the copy is reverted',
    existing: { ...currentCopy, annotations: { note: 'edited' } },
    decision: {
      action: 'update',
      secret: { ...desired, metadata: { ...desired.metadata, resourceVersion: '42' } },
      status: succeeded,
    },
  },
  {
    name: 'an extra ownerReference on the copy is reverted',
    existing: {
      ...currentCopy,
      ownerReferences: [ourRef, { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'cm' }],
    },
    decision: {
      action: 'update',
      secret: { ...desired, metadata: { ...desired.metadata, resourceVersion: '42' } },
      status: succeeded,
    },
  },
  {
    name: 'a source whose type changed makes the copy be deleted and created again',
    source: { ...source, type: 'kubernetes.io/basic-auth', data: { username: b64('u'), password: b64('p') } },
    existing: currentCopy,
    decision: {
      action: 'recreate',
      delete: copyTarget,
      secret: {
        ...desired,
        type: 'kubernetes.io/basic-auth',
        data: { username: b64('u'), password: b64('p') },
      },
      status: succeeded,
    },
  },
  {
    name: 'a copy someone made immutable is deleted and created again',
    existing: { ...currentCopy, immutable: true },
    decision: { action: 'recreate', delete: copyTarget, secret: desired, status: succeeded },
  },
  // revocation
  {
    name: 'a deleted export removes the owned copy',
    exports: [],
    existing: currentCopy,
    decision: { action: 'delete', delete: copyTarget, status: noMatch },
  },
  {
    name: 'an export that stops allowing the namespace removes the owned copy',
    exports: [{ ...exportObj, spec: { toNamespace: 'elsewhere' } }],
    existing: currentCopy,
    decision: { action: 'delete', delete: copyTarget, status: noMatch },
  },
  {
    name: 'a deleted source Secret removes the owned copy',
    source: null,
    existing: currentCopy,
    decision: { action: 'delete', delete: copyTarget, status: noMatch },
  },
  {
    name: 'a wrong fromNamespace matches nothing and removes the owned copy',
    importObj: { ...importObj, spec: { fromNamespace: 'elsewhere' } },
    existing: currentCopy,
    decision: { action: 'delete', delete: copyTarget, status: noMatch },
  },
  {
    name: 'a wildcard export no longer reaches a namespace that becomes excluded',
    exports: [{ ...exportObj, spec: { toNamespace: '*' } }],
    namespace: { name: 'app', labels: {}, annotations: { [EXCLUDED]: 'yes' } },
    existing: currentCopy,
    decision: { action: 'delete', delete: copyTarget, status: noMatch },
  },
  {
    name: 'an explicitly named namespace keeps its copy when excluded from wildcards',
    exports: [{ ...exportObj, spec: { toNamespaces: ['*', 'app'] } }],
    namespace: { name: 'app', labels: {}, annotations: { [EXCLUDED]: 'yes' } },
    existing: currentCopy,
    decision: { action: 'none', status: succeeded },
  },
  {
    name: 'an invalid export matches nothing',
    exports: [{ ...exportObj, spec: { toNamespaces: ['app', ''] } }],
    existing: currentCopy,
    decision: { action: 'delete', delete: copyTarget, status: noMatch },
  },
  {
    name: 'an export of another name does not match',
    exports: [{ ...exportObj, name: 'other' }],
    decision: { action: 'none', status: noMatch },
  },
  {
    name: 'a source Secret of another name does not match',
    source: { ...source, name: 'other' },
    decision: { action: 'none', status: noMatch },
  },
  {
    name: 'no match and no copy does nothing but report',
    exports: [],
    decision: { action: 'none', status: noMatch },
  },
  {
    name: 'a missing fromNamespace is a validation failure with upstream’s message and removes the owned copy',
    importObj: { ...importObj, spec: {} },
    existing: currentCopy,
    decision: {
      action: 'delete',
      delete: copyTarget,
      status: { type: 'ReconcileFailed', message: MISSING_FROM_NAMESPACE_MESSAGE },
    },
  },
  // someone else's Secret
  {
    name: 'a same-named Secret with no owner is never overwritten',
    existing: { ...currentCopy, ownerReferences: undefined },
    decision: { action: 'refuse', status: notControlled },
  },
  {
    name: 'a same-named Secret controlled by another import is never overwritten',
    existing: { ...currentCopy, ownerReferences: [{ ...ourRef, uid: 'another-import' }] },
    decision: { action: 'refuse', status: notControlled },
  },
  {
    name: 'a same-named Secret that lists this import as a non-controller owner is never overwritten',
    existing: { ...currentCopy, ownerReferences: [{ ...ourRef, controller: false }] },
    decision: { action: 'refuse', status: notControlled },
  },
  {
    name: 'a same-named Secret not controlled by this import is never deleted on no match',
    exports: [],
    existing: { ...currentCopy, ownerReferences: [] },
    decision: { action: 'none', status: noMatch },
  },
];

describe('decideImport', () => {
  for (const c of cases) {
    it(c.name, () => {
      const decision = decideImport(
        c.importObj ?? importObj,
        c.exports ?? [exportObj],
        c.source === null ? undefined : (c.source ?? source),
        c.namespace ?? appNamespace,
        c.existing,
      );
      assert.deepEqual(decision, c.decision);
    });
  }

  it('the status message for no match is upstream’s', () => {
    assert.equal(NO_MATCH_MESSAGE, 'No matching export/secret');
    assert.equal(
      MISSING_FROM_NAMESPACE_MESSAGE,
      "Validation errors:\n- Validating 'spec.fromNamespace': Expected to be non-empty",
    );
  });

  it('the desired copy does not share objects with the inputs', () => {
    const decision = decideImport(importObj, [exportObj], source, appNamespace, undefined);
    assert.equal(decision.action, 'create');
    if (decision.action === 'create') {
      decision.secret.data['x'] = 'y';
      decision.secret.metadata.labels['x'] = 'y';
      assert.equal(source.data['x'], undefined);
      assert.equal(importObj.labels?.['x'], undefined);
    }
  });
});

describe('isImportCopy', () => {
  const ref = (over: Record<string, unknown>) => ({
    apiVersion: 'secretgen.carvel.dev/v1alpha1',
    kind: 'SecretImport',
    name: 'creds',
    uid: 'u',
    controller: true,
    ...over,
  });
  const cases: Array<
    [string, { ownerReferences?: Parameters<typeof isImportCopy>[0]['ownerReferences'] }, boolean]
  > = [
    ['no owner', {}, false],
    ['controlled by a SecretImport', { ownerReferences: [ref({})] }, true],
    [
      'a SecretImport owner that is not the controller',
      { ownerReferences: [ref({ controller: false })] },
      false,
    ],
    ['controller flag missing', { ownerReferences: [ref({ controller: undefined })] }, false],
    ['a PackageRepository controls it', { ownerReferences: [ref({ kind: 'PackageRepository' })] }, false],
    ['same kind in another group', { ownerReferences: [ref({ apiVersion: 'example.com/v1' })] }, false],
    [
      'one of several owners is the controlling SecretImport',
      { ownerReferences: [ref({ kind: 'ConfigMap', controller: false }), ref({})] },
      true,
    ],
  ];
  for (const [name, secret, want] of cases) {
    it(name, () => assert.equal(isImportCopy(secret), want));
  }
});
