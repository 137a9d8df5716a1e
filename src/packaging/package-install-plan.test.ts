import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appDiffers,
  appForUpdate,
  appSyncedForDeletion,
  isControlledBy,
  needsKubernetesVersion,
  packageInstallStatus,
  planPackageInstall,
  type InstallPlanInput,
} from './package-install-plan.js';
import type { App, FetchStage, Package, PackageInstall } from './types.js';

const GLOBAL = 'kapp-controller-packaging-global';
const SEE = 'Error (see .status.usefulErrorMessage for details)';

function pkg(
  version: string,
  fetch: FetchStage[] = [{ imgpkgBundle: { image: `r.io/app:${version}` } }],
  ns = 'ns',
): Package {
  return {
    apiVersion: 'data.packaging.carvel.dev/v1alpha1',
    kind: 'Package',
    metadata: { name: `app.corp.com.${version}`, namespace: ns },
    spec: {
      refName: 'app.corp.com',
      version,
      template: { spec: { fetch, template: [{ ytt: {} }], deploy: [{ kapp: {} }] } },
    },
  };
}

function install(extra: Partial<PackageInstall> = {}, constraints = '>=1.0.0'): PackageInstall {
  return {
    apiVersion: 'packaging.carvel.dev/v1alpha1',
    kind: 'PackageInstall',
    metadata: { name: 'inst', namespace: 'ns', uid: 'pkgi-uid', generation: 1, ...(extra.metadata ?? {}) },
    spec: {
      serviceAccountName: 'sa',
      packageRef: { refName: 'app.corp.com', versionSelection: { constraints } },
      ...(extra.spec ?? {}),
    },
    status: extra.status,
  };
}

function input(over: Partial<InstallPlanInput> = {}): InstallPlanInput {
  return {
    pkgi: install(),
    namespaced: [pkg('1.0.0'), pkg('1.1.0')],
    global: [],
    namespaceAnnotations: {},
    globalNamespace: GLOBAL,
    app: undefined,
    ownedPlaceholders: [],
    ...over,
  };
}

describe('planPackageInstall', () => {
  it('creates the App of the highest matching version with a placeholder for its bundle', () => {
    const plan = planPackageInstall(input());
    assert.equal(plan.version, '1.1.0');
    assert.equal(plan.lastAttemptedVersion, '1.1.0');
    assert.equal(plan.apply?.change, 'create');
    assert.deepEqual(plan.apply?.placeholders, ['inst-fetch-0']);
    assert.deepEqual(plan.apply?.app.spec?.fetch, [
      { imgpkgBundle: { image: 'r.io/app:1.1.0', secretRef: { name: 'inst-fetch-0' } } },
    ]);
    assert.equal(plan.status.type, 'Reconciling');
  });

  it('mirrors the App when it already matches', () => {
    const first = planPackageInstall(input());
    const app: App = {
      ...first.apply!.app,
      metadata: { ...first.apply!.app.metadata, generation: 2 },
      status: {
        observedGeneration: 2,
        conditions: [{ type: 'ReconcileFailed', status: 'True', message: 'x' }],
        usefulErrorMessage: 'Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
      },
    };
    const plan = planPackageInstall(input({ app, ownedPlaceholders: ['inst-fetch-0'] }));
    assert.equal(plan.apply?.change, 'none');
    assert.deepEqual(plan.apply?.stalePlaceholders, []);
    assert.deepEqual(plan.status, {
      type: 'ReconcileFailed',
      message: SEE,
      usefulErrorMessage: 'Fetching resources: fetch stage 0 (imgpkgBundle): not supported yet',
      friendlyDescription: `Reconcile failed: ${SEE}`,
    });
  });

  it('updates the App and removes the placeholder of a stage that disappeared', () => {
    const twoStages = [
      pkg('1.0.0', [{ imgpkgBundle: { image: 'r.io/a:1' } }, { image: { url: 'r.io/b:1' } }]),
    ];
    const first = planPackageInstall(input({ namespaced: twoStages }));
    assert.deepEqual(first.apply?.placeholders, ['inst-fetch-0', 'inst-fetch-1']);
    const plan = planPackageInstall(
      input({
        namespaced: [...twoStages, pkg('1.1.0')],
        app: first.apply.app,
        ownedPlaceholders: ['inst-fetch-0', 'inst-fetch-1', 'unrelated'],
      }),
    );
    assert.equal(plan.apply?.change, 'update');
    assert.deepEqual(plan.apply?.stalePlaceholders, ['inst-fetch-1']);
    assert.equal(plan.status.type, 'Reconciling');
  });

  it('uses the annotation instead of a placeholder and warns about an out-of-range index and an empty name', () => {
    const plan = planPackageInstall(
      input({
        pkgi: install({
          metadata: {
            annotations: {
              'ext.packaging.carvel.dev/fetch-0-secret-name': 'mine',
              'ext.packaging.carvel.dev/fetch-1-secret-name': '',
              'ext.packaging.carvel.dev/fetch-7-secret-name': 'nowhere',
            },
          },
        }),
      }),
    );
    assert.deepEqual(plan.apply?.placeholders, []);
    assert.deepEqual(plan.apply?.app.spec?.fetch, [
      { imgpkgBundle: { image: 'r.io/app:1.1.0', secretRef: { name: 'mine' } } },
    ]);
    assert.deepEqual(
      plan.warnings.map((w) => [w.reason, w.annotation]),
      [
        ['EmptyFetchSecretName', 'ext.packaging.carvel.dev/fetch-1-secret-name'],
        ['FetchSecretIndexOutOfRange', 'ext.packaging.carvel.dev/fetch-7-secret-name'],
      ],
    );
  });

  it('sees global Packages, and a namespaced one of the same name wins', () => {
    const global = [pkg('1.0.0', [{ image: { url: 'global/img' } }], GLOBAL)];
    const local = [pkg('1.0.0', [{ image: { url: 'local/img' } }])];
    assert.equal(
      planPackageInstall(input({ namespaced: [], global })).apply?.app.spec?.fetch?.[0]?.image?.url,
      'global/img',
    );
    assert.equal(
      planPackageInstall(input({ namespaced: local, global })).apply?.app.spec?.fetch?.[0]?.image?.url,
      'local/img',
    );
  });

  it('does not see global Packages in a namespace that excludes them', () => {
    const plan = planPackageInstall(
      input({
        namespaced: [],
        global: [pkg('1.0.0', undefined, GLOBAL)],
        namespaceAnnotations: { 'kapp-controller.carvel.dev/exclude-global-packages': '' },
      }),
    );
    assert.equal(plan.status.usefulErrorMessage, 'Package app.corp.com not found');
    assert.equal(plan.apply, undefined);
  });

  it('keeps version and lastAttemptedVersion when selection fails', () => {
    const plan = planPackageInstall(
      input({ pkgi: install({ status: { version: '1.0.0', lastAttemptedVersion: '1.0.0' } }, '>=5.0.0') }),
    );
    assert.deepEqual([plan.version, plan.lastAttemptedVersion], ['1.0.0', '1.0.0']);
    assert.equal(
      plan.status.message,
      'Expected to find at least one version, but did not (details: all=2 -> after-prereleases-filter=2 -> after-kapp-controller-version-check=2 -> after-constraints-filter=0)',
    );
  });

  it('refuses a downgrade, keeping the installed version, unless the PackageInstall allows it', () => {
    const status = { version: '1.1.0', lastAttemptedVersion: '1.1.0' };
    const refused = planPackageInstall(input({ pkgi: install({ status }), namespaced: [pkg('1.0.0')] }));
    assert.equal(refused.status.type, 'ReconcileFailed');
    assert.equal(refused.status.message, SEE);
    assert.match(refused.status.usefulErrorMessage, /packaging\.carvel\.dev\/downgradable/);
    assert.equal(refused.version, '1.1.0');
    assert.equal(refused.apply, undefined);
    const allowed = planPackageInstall(
      input({
        pkgi: install({ status, metadata: { annotations: { 'packaging.carvel.dev/downgradable': '' } } }),
        namespaced: [pkg('1.0.0')],
      }),
    );
    assert.equal(allowed.version, '1.0.0');
    assert.equal(allowed.apply?.change, 'create');
  });

  it('does not take over an App another controller owns', () => {
    const foreign: App = {
      metadata: {
        name: 'inst',
        namespace: 'ns',
        ownerReferences: [{ apiVersion: 'x/v1', kind: 'Other', name: 'o', uid: 'other', controller: true }],
      },
      spec: { fetch: [] },
    };
    const plan = planPackageInstall(input({ app: foreign }));
    assert.equal(plan.apply, undefined);
    assert.equal(
      plan.status.message,
      'App ns/inst already exists and is not controlled by this PackageInstall (it is controlled by Other o); it is left untouched: delete it or choose another PackageInstall name',
    );
  });

  it('reports values without secretRef before anything else', () => {
    const plan = planPackageInstall(input({ pkgi: install({ spec: { values: [{}] } }) }));
    assert.equal(plan.status.message, 'Invalid fields: spec.values[0].secretRef: Required value');
  });
});

describe('App helpers', () => {
  const ours: App = {
    metadata: {
      name: 'inst',
      namespace: 'ns',
      resourceVersion: '7',
      finalizers: ['finalizers.kapp-ctrl.k14s.io/delete'],
      ownerReferences: [
        {
          apiVersion: 'packaging.carvel.dev/v1alpha1',
          kind: 'PackageInstall',
          name: 'inst',
          uid: 'pkgi-uid',
          controller: true,
        },
      ],
    },
    spec: { serviceAccountName: 'sa', noopDelete: false },
    status: { observedGeneration: 1 },
  };

  it('recognises the controller ownerReference by uid only', () => {
    assert.equal(isControlledBy(ours, 'pkgi-uid'), true);
    assert.equal(isControlledBy(ours, 'other'), false);
    assert.equal(isControlledBy({ metadata: {} }, 'pkgi-uid'), false);
  });

  it('builds the update from the existing App, keeping resourceVersion and finalizers, without status', () => {
    const desired: App = {
      metadata: { annotations: { a: 'b' }, ownerReferences: ours.metadata!.ownerReferences },
      spec: { paused: true },
    };
    const update = appForUpdate(ours, desired);
    assert.equal(update.metadata?.resourceVersion, '7');
    assert.deepEqual(update.metadata?.finalizers, ['finalizers.kapp-ctrl.k14s.io/delete']);
    assert.deepEqual(update.spec, { paused: true });
    assert.equal(update.status, undefined);
    assert.equal(appDiffers(ours, desired), true);
    assert.equal(
      appDiffers(ours, { metadata: { ownerReferences: ours.metadata!.ownerReferences }, spec: ours.spec }),
      false,
    );
  });

  it('puts the PackageInstall noopDelete on the App before deleting it', () => {
    const synced = appSyncedForDeletion(ours, install({ spec: { noopDelete: true } }));
    assert.equal(synced?.spec?.noopDelete, true);
    assert.equal(appSyncedForDeletion(ours, install()), undefined);
  });

  it('needs the Kubernetes version only when a candidate constrains it and nothing says to ignore it', () => {
    const constrained = {
      ...pkg('1.0.0'),
      spec: { ...pkg('1.0.0').spec, kubernetesVersionSelection: { constraints: '>=1.20.0' } },
    };
    assert.equal(needsKubernetesVersion(install(), [pkg('1.0.0')]), false);
    assert.equal(needsKubernetesVersion(install(), [constrained]), true);
    assert.equal(
      needsKubernetesVersion(
        install({
          metadata: { annotations: { 'packaging.carvel.dev/ignore-kubernetes-version-selection': '' } },
        }),
        [constrained],
      ),
      false,
    );
  });
});

describe('packageInstallStatus', () => {
  it('writes one condition, the description, the versions and no empty usefulErrorMessage', () => {
    const status = packageInstallStatus(
      undefined,
      3,
      { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' },
      { version: '1.1.0', lastAttemptedVersion: '1.1.0' },
      () => new Date('2026-01-01T00:00:00Z'),
    );
    assert.deepEqual(status, {
      observedGeneration: 3,
      conditions: [{ type: 'Reconciling', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      friendlyDescription: 'Reconciling',
      version: '1.1.0',
      lastAttemptedVersion: '1.1.0',
    });
  });
});
