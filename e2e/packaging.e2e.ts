// Packaging control plane against a real API server, kube-controller-manager
// and the whole operator: PackageRepository placeholders, PackageInstall
// version selection and the App it builds, fetch-secret wiring, status,
// deletion, bad input. No registry is reachable here (e2e/fetch.e2e.ts has a
// real one): fetches of registry.corp.com images fail at the network level
// and are retried on the failure backoff; a missing Secret fails without retry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { SecretExportKind, SecretExportResource } from '../generated/index.js';
import { REPO_ROOT } from './harness/cluster.js';
import { waitFor } from './harness/wait.js';
import {
  Secrets,
  createNamespace,
  dockerConfig,
  eventsAbout,
  sleep,
  startPackagingEnv,
  waitForGone,
  waitForObject,
  waitForOperatorIdle,
  RESYNC_MS,
  type PackagingEnv,
} from './fixtures/packaging/env.js';
import {
  Apps,
  PackageInstalls,
  PackageRepositories,
  Packages,
} from '../src/packaging/controllers/resources.js';
import type { App, AppSpec, Package, PackageInstall, PackageRepository } from '../src/packaging/types.js';
import type { RunStatus } from '../src/packaging/run-status.js';

const GLOBAL = 'kapp-controller-packaging-global';
const SEE = 'Error (see .status.usefulErrorMessage for details)';
const PULL = 'secretgen.carvel.dev/image-pull-secret';
/** The failure of fetching an image from a registry this machine cannot reach (no DNS for it, here). */
const unreachable = (image: string) =>
  new RegExp(`^Fetching resources: fetch stage 0 \\(imgpkgBundle\\): ${escape(image)}: (NETWORK|TIMEOUT): `);
const missingSecret = (name: string, ns: string) =>
  `Fetching resources: fetch stage 0 (imgpkgBundle): Secret ${name} not found in namespace ${ns}`;
const BUILD_IMAGE = 'registry.corp.com/packages/build:1.0.0';
const LIFE_IMAGE = 'registry.corp.com/packages/life.test.carvel.dev:1.0.0';
const PKGI_API = 'packaging.carvel.dev/v1alpha1';

type Pkgi = PackageInstall & { metadata: { name: string; namespace: string; uid: string } };

let env: PackagingEnv;

before(async () => {
  env = await startPackagingEnv();
  for (const ns of [
    GLOBAL,
    'repos',
    'versions',
    'g-app',
    'downgrade',
    'app-build',
    'upgrade',
    'lifecycle',
    'bad-input',
    'standalone',
  ]) {
    await createNamespace(env, ns);
  }
  await createNamespace(env, 'g-excluded', { 'kapp-controller.carvel.dev/exclude-global-packages': '' });
});

after(async () => {
  await env?.stop();
});

// ---------------------------------------------------------------------------
// builders

const template = (refName: string, version: string): AppSpec => ({
  fetch: [{ imgpkgBundle: { image: `registry.corp.com/packages/${refName}:${version}` } }],
  template: [{ ytt: { paths: ['config/'] } }, { kbld: { paths: ['-', '.imgpkg/images.yml'] } }],
  deploy: [{ kapp: {} }],
});

async function createPackage(namespace: string, refName: string, version: string, spec?: AppSpec) {
  const pkg: Package = {
    apiVersion: 'data.packaging.carvel.dev/v1alpha1',
    kind: 'Package',
    metadata: { name: `${refName}.${version}`, namespace },
    spec: { refName, version, template: { spec: spec ?? template(refName, version) } },
  };
  await env.client.create(Packages, pkg as never);
}

async function createInstall(
  namespace: string,
  name: string,
  refName: string,
  versionSelection: Record<string, unknown> | undefined,
  extra: { spec?: Record<string, unknown>; annotations?: Record<string, string> } = {},
): Promise<Pkgi> {
  const pkgi = {
    apiVersion: PKGI_API,
    kind: 'PackageInstall',
    metadata: { name, namespace, annotations: extra.annotations },
    spec: {
      serviceAccountName: 'installer',
      packageRef: { refName, ...(versionSelection ? { versionSelection } : {}) },
      ...(extra.spec ?? {}),
    },
  };
  return await env.client.create(PackageInstalls, pkgi as never);
}

const getApp = (ns: string, name: string) =>
  env.client.get(Apps, ns, name) as Promise<(App & { metadata: { uid: string } }) | undefined>;
const getSecret = (ns: string, name: string) => env.client.get<V1Secret>(Secrets, ns, name);

function waitForInstall(
  ns: string,
  name: string,
  what: string,
  check: (p: Pkgi) => boolean,
  timeoutMs?: number,
) {
  return waitForObject<Pkgi & { apiVersion: string }>(
    env,
    PackageInstalls,
    ns,
    name,
    `PackageInstall ${ns}/${name}: ${what}`,
    check,
    timeoutMs,
  );
}

function waitForApp(ns: string, name: string, what: string, check: (a: App) => boolean = () => true) {
  return waitForObject<App & { apiVersion: string; metadata: { uid: string } }>(
    env,
    Apps,
    ns,
    name,
    `App ${ns}/${name}: ${what}`,
    check,
  );
}

const failedWith =
  (message: string | RegExp) => (p: { status?: { conditions?: { type: string; message?: string }[] } }) =>
    p.status?.conditions?.[0]?.type === 'ReconcileFailed' &&
    (typeof message === 'string'
      ? p.status.conditions[0].message === message
      : message.test(p.status.conditions[0].message ?? ''));

/** Asserts the exact placeholder shape: type, annotation, `{"auths":{}}`, one plain ownerReference. */
function assertPlaceholder(secret: V1Secret | undefined, owner: { kind: string; name: string; uid: string }) {
  assert.ok(secret, 'placeholder missing');
  assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
  // The secret-sharing side may have added its status annotation; nothing else is there.
  const annotations = { ...secret.metadata?.annotations };
  delete annotations['secretgen.carvel.dev/status'];
  assert.deepEqual(annotations, { [PULL]: '' });
  assert.deepEqual(dockerConfig(secret), { auths: {} });
  assert.deepEqual(
    secret.metadata?.ownerReferences?.map((r) => ({ ...r })),
    [{ apiVersion: PKGI_API, kind: owner.kind, name: owner.name, uid: owner.uid }],
  );
}

/** Names of placeholder Secrets in a namespace whose ownerReferences name `uid`. */
async function placeholdersOwnedBy(ns: string, uid: string): Promise<string[]> {
  const { items } = await env.client.list<V1Secret>(Secrets, { namespace: ns });
  return items
    .filter((s) => s.metadata?.annotations?.[PULL] !== undefined)
    .filter((s) => (s.metadata?.ownerReferences ?? []).some((r) => r.uid === uid))
    .map((s) => s.metadata!.name!)
    .sort();
}

// ---------------------------------------------------------------------------

describe('PackageRepository', () => {
  const MISSING = missingSecret('my-registry-creds', 'repos');

  test('an imgpkgBundle repository without secretRef gets the empty placeholder <name>-fetch-0, owned by it', async () => {
    await env.cluster.apply(`apiVersion: ${PKGI_API}
kind: PackageRepository
metadata: {name: bundle-repo, namespace: repos}
spec:
  fetch:
    imgpkgBundle: {image: registry.corp.com/packages/repo:1.0.0}
`);
    const repo = await waitForObject<PackageRepository & { apiVersion: string; metadata: { uid: string } }>(
      env,
      PackageRepositories,
      'repos',
      'bundle-repo',
      'exists',
    );
    const secret = await waitForObject<V1Secret>(env, Secrets, 'repos', 'bundle-repo-fetch-0', 'placeholder');
    assertPlaceholder(secret, { kind: 'PackageRepository', name: 'bundle-repo', uid: repo.metadata.uid });
  });

  test('an image repository without secretRef gets one too', async () => {
    await env.cluster.apply(`apiVersion: ${PKGI_API}
kind: PackageRepository
metadata: {name: image-repo, namespace: repos}
spec:
  fetch:
    image: {url: registry.corp.com/packages/repo-image:1.0.0}
`);
    const secret = await waitForObject<V1Secret>(env, Secrets, 'repos', 'image-repo-fetch-0', 'placeholder');
    const repo = await env.client.get(PackageRepositories, 'repos', 'image-repo');
    assertPlaceholder(secret, { kind: 'PackageRepository', name: 'image-repo', uid: repo!.metadata!.uid! });
  });

  test('a repository with a secretRef gets none, and reports that its Secret is missing, once', async () => {
    await env.cluster.apply(`apiVersion: ${PKGI_API}
kind: PackageRepository
metadata: {name: with-secret, namespace: repos}
spec:
  fetch:
    imgpkgBundle:
      image: registry.corp.com/packages/repo:1.0.0
      secretRef: {name: my-registry-creds}
`);
    const repo = await waitForObject<PackageRepository & { apiVersion: string; status?: RunStatus }>(
      env,
      PackageRepositories,
      'repos',
      'with-secret',
      'fetch reported as failed',
      failedWith(MISSING),
    );
    const s = repo.status!;
    assert.deepEqual(s, {
      observedGeneration: 1,
      conditions: [
        {
          type: 'ReconcileFailed',
          status: 'True',
          message: MISSING,
          lastTransitionTime: s.conditions?.[0]?.lastTransitionTime,
        },
      ],
      friendlyDescription: `Reconcile failed: ${MISSING.slice(0, 80)}...`,
      usefulErrorMessage: MISSING,
      fetch: {
        startedAt: s.fetch?.startedAt,
        updatedAt: s.fetch?.updatedAt,
        exitCode: 1,
        error: MISSING.replace('Fetching resources: ', ''),
      },
      consecutiveReconcileFailures: 1,
      consecutiveReconcileSuccesses: 0,
    });
    assert.match(String(s.fetch?.startedAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(repo.metadata?.finalizers, ['finalizers.packagerepository.packaging.carvel.dev/delete']);
    assert.equal(await getSecret('repos', 'with-secret-fetch-0'), undefined);
    assert.ok(
      (await eventsAbout(env, 'repos', 'with-secret')).includes(`Warning ReconcileFailed: ${MISSING}`),
    );
    // Only the Secret's appearance can fix this: no retry on the failure backoff.
    await sleep(3000);
    const later = await env.client.get(PackageRepositories, 'repos', 'with-secret');
    assert.deepEqual((later as { status?: RunStatus } | undefined)?.status, s);
  });

  test('a paused repository reports Paused and fetches nothing', async () => {
    await env.cluster.apply(`apiVersion: ${PKGI_API}
kind: PackageRepository
metadata: {name: paused-repo, namespace: repos}
spec:
  paused: true
  fetch:
    git: {url: https://github.com/corp/repo, ref: origin/main}
`);
    const repo = await waitForObject<PackageRepository & { apiVersion: string; status?: RunStatus }>(
      env,
      PackageRepositories,
      'repos',
      'paused-repo',
      'Paused',
      (r) => (r as { status?: RunStatus }).status?.friendlyDescription === 'Paused',
    );
    assert.deepEqual(repo.status, { observedGeneration: 1, friendlyDescription: 'Paused' });
  });

  test('kubectl get pkgr shows Age and Description', async () => {
    const out = await env.cluster.kubectl(['get', 'pkgr', '-n', 'repos', 'with-secret']);
    const [header, row] = out.trim().split('\n');
    assert.match(header!, /^NAME\s+AGE\s+DESCRIPTION$/);
    assert.match(
      row!,
      new RegExp(`^with-secret\\s+\\S+\\s+Reconcile failed: ${escape(MISSING.slice(0, 80))}\\.\\.\\.$`),
    );
  });
});

// ---------------------------------------------------------------------------

describe('PackageInstall version selection', () => {
  const REF = 'sel.test.carvel.dev';
  const versions = ['1.0.0', '1.2.0', '1.2.5', '2.0.0', '2.1.0-rc.1', '3.0.0-beta.1'];
  const cases: {
    name: string;
    pkgi: string;
    selection: Record<string, unknown>;
    refName?: string;
    version?: string;
    error?: string;
  }[] = [
    { name: 'an exact version', pkgi: 'exact', selection: { constraints: '1.2.0' }, version: '1.2.0' },
    {
      name: 'a range with AND',
      pkgi: 'range',
      selection: { constraints: '>=1.0.0 <2.0.0' },
      version: '1.2.5',
    },
    { name: 'an x wildcard', pkgi: 'wildcard', selection: { constraints: '1.2.x' }, version: '1.2.5' },
    {
      name: 'alternatives with ||',
      pkgi: 'or',
      selection: { constraints: '<1.1.0 || >=2.0.0' },
      version: '2.0.0',
    },
    {
      name: 'no constraint: the highest release, prereleases skipped',
      pkgi: 'any',
      selection: {},
      version: '2.0.0',
    },
    {
      name: 'prereleases turned on: a range compares them like any version',
      pkgi: 'pre-all',
      selection: { constraints: '>=2.0.0', prereleases: {} },
      version: '3.0.0-beta.1',
    },
    {
      name: 'prereleases limited to an identifier',
      pkgi: 'pre-rc',
      selection: { constraints: '>=2.0.0', prereleases: { identifiers: ['rc'] } },
      version: '2.1.0-rc.1',
    },
    {
      name: 'an exact prerelease turns prereleases on',
      pkgi: 'pre-exact',
      selection: { constraints: '2.1.0-rc.1' },
      version: '2.1.0-rc.1',
    },
    {
      name: 'nothing matching fails with the filter details',
      pkgi: 'none',
      selection: { constraints: '>=4.0.0' },
      error:
        'Expected to find at least one version, but did not (details: all=6 -> after-prereleases-filter=4 -> after-kapp-controller-version-check=4 -> after-constraints-filter=0)',
    },
    {
      name: 'an unknown package fails with not found',
      pkgi: 'unknown',
      refName: 'missing.test.carvel.dev',
      selection: { constraints: '1.0.0' },
      error: 'Package missing.test.carvel.dev not found',
    },
  ];

  before(async () => {
    for (const v of versions) await createPackage('versions', REF, v);
    for (const c of cases) await createInstall('versions', c.pkgi, c.refName ?? REF, c.selection);
  });

  for (const c of cases) {
    if (c.version) {
      test(`${c.name} selects ${c.version}`, async () => {
        const pkgi = await waitForInstall(
          'versions',
          c.pkgi,
          `version ${c.version}`,
          (p) => p.status?.version === c.version,
        );
        assert.equal(pkgi.status?.lastAttemptedVersion, c.version);
        const app = await waitForApp('versions', c.pkgi, 'exists');
        assert.equal(app.metadata?.annotations?.['packaging.carvel.dev/package-version'], c.version);
        assert.deepEqual(app.spec?.fetch, [
          {
            imgpkgBundle: {
              image: `registry.corp.com/packages/${REF}:${c.version}`,
              secretRef: { name: `${c.pkgi}-fetch-0` },
            },
          },
        ]);
      });
    } else {
      test(`${c.name}`, async () => {
        const pkgi = await waitForInstall('versions', c.pkgi, 'failed', failedWith(c.error!));
        assert.equal(pkgi.status?.usefulErrorMessage, c.error);
        const first = c.error!.split('\n')[0]!;
        assert.equal(
          pkgi.status?.friendlyDescription,
          `Reconcile failed: ${first.length > 80 ? `${first.slice(0, 80)}...` : first}`,
        );
        assert.equal(pkgi.status?.observedGeneration, 1);
        assert.equal(pkgi.status?.version, undefined);
        assert.equal(await getApp('versions', c.pkgi), undefined, 'no App for a failed selection');
        assert.deepEqual(await placeholdersOwnedBy('versions', pkgi.metadata.uid), []);
      });
    }
  }
});

// ---------------------------------------------------------------------------

describe('global packaging namespace', () => {
  const REF = 'glob.test.carvel.dev';
  const image = (p: App | undefined) => p?.spec?.fetch?.[0]?.image?.url;
  const spec = (url: string): AppSpec => ({
    fetch: [{ image: { url } }],
    template: [{ ytt: {} }],
    deploy: [{ kapp: {} }],
  });

  test('a Package created in the global namespace resolves a waiting PackageInstall in another namespace', async () => {
    await createInstall('g-app', 'from-global', REF, { constraints: '1.0.0' });
    await waitForInstall('g-app', 'from-global', 'not found yet', failedWith(`Package ${REF} not found`));
    await createPackage(GLOBAL, REF, '1.0.0', spec('registry.corp.com/global:1.0.0'));
    await waitForInstall('g-app', 'from-global', 'version 1.0.0', (p) => p.status?.version === '1.0.0');
    assert.equal(image(await waitForApp('g-app', 'from-global', 'exists')), 'registry.corp.com/global:1.0.0');
  });

  test('a namespaced Package of the same name wins over the global one', async () => {
    await createPackage('g-app', REF, '1.0.0', spec('registry.corp.com/local:1.0.0'));
    const app = await waitForApp(
      'g-app',
      'from-global',
      'local image',
      (a) => image(a) === 'registry.corp.com/local:1.0.0',
    );
    assert.deepEqual(app.spec?.fetch, [
      { image: { url: 'registry.corp.com/local:1.0.0', secretRef: { name: 'from-global-fetch-0' } } },
    ]);
  });

  test('a namespace with exclude-global-packages sees no global Package until the annotation goes', async () => {
    await createInstall('g-excluded', 'excluded', REF, { constraints: '1.0.0' });
    await waitForInstall('g-excluded', 'excluded', 'not found', failedWith(`Package ${REF} not found`));
    await env.cluster.kubectl([
      'annotate',
      'namespace',
      'g-excluded',
      'kapp-controller.carvel.dev/exclude-global-packages-',
    ]);
    await waitForInstall('g-excluded', 'excluded', 'version 1.0.0', (p) => p.status?.version === '1.0.0');
    assert.equal(
      image(await waitForApp('g-excluded', 'excluded', 'exists')),
      'registry.corp.com/global:1.0.0',
    );
  });
});

// ---------------------------------------------------------------------------

describe('Package changes', () => {
  const REF = 'up.test.carvel.dev';

  test('a new higher version updates the App, status.version and lastAttemptedVersion', async () => {
    await createPackage('upgrade', REF, '1.0.0');
    await createInstall('upgrade', 'up', REF, { constraints: '>=1.0.0' });
    await waitForInstall('upgrade', 'up', 'version 1.0.0', (p) => p.status?.version === '1.0.0');
    const before = await waitForApp('upgrade', 'up', 'exists');
    await createPackage('upgrade', REF, '1.1.0');
    const app = await waitForApp(
      'upgrade',
      'up',
      'version 1.1.0',
      (a) => a.metadata?.annotations?.['packaging.carvel.dev/package-version'] === '1.1.0',
    );
    assert.equal(app.spec?.fetch?.[0]?.imgpkgBundle?.image, `registry.corp.com/packages/${REF}:1.1.0`);
    assert.equal(app.metadata?.uid, before.metadata.uid, 'the App is updated, not replaced');
    const pkgi = await waitForInstall('upgrade', 'up', 'version 1.1.0', (p) => p.status?.version === '1.1.0');
    assert.equal(pkgi.status?.lastAttemptedVersion, '1.1.0');
  });

  test('a lower version is refused without packaging.carvel.dev/downgradable, and taken with it', async () => {
    const REF2 = 'dg.test.carvel.dev';
    await createPackage('downgrade', REF2, '1.0.0');
    await createPackage('downgrade', REF2, '2.0.0');
    await createInstall('downgrade', 'dg', REF2, { constraints: '>=1.0.0' });
    await waitForInstall('downgrade', 'dg', 'version 2.0.0', (p) => p.status?.version === '2.0.0');
    await env.client.delete(Packages, 'downgrade', `${REF2}.2.0.0`);
    const refused = await waitForInstall(
      'downgrade',
      'dg',
      'downgrade refused',
      (p) =>
        failedWith(SEE)(p) &&
        (p.status?.usefulErrorMessage ?? '').startsWith('Stopped installing matched version'),
    );
    assert.equal(
      refused.status?.usefulErrorMessage,
      "Stopped installing matched version '1.0.0' since last attempted version '2.0.0' is higher.\nhint: Add annotation packaging.carvel.dev/downgradable: \"\" to PackageInstall to proceed with downgrade",
    );
    assert.equal(refused.status?.friendlyDescription, `Reconcile failed: ${SEE}`);
    assert.equal(refused.status?.version, '2.0.0');
    assert.equal(refused.status?.lastAttemptedVersion, '2.0.0');
    assert.equal(
      (await getApp('downgrade', 'dg'))?.metadata?.annotations?.['packaging.carvel.dev/package-version'],
      '2.0.0',
      'the App is left as it was',
    );
    await env.cluster.kubectl([
      'annotate',
      'pkgi',
      '-n',
      'downgrade',
      'dg',
      'packaging.carvel.dev/downgradable=',
    ]);
    const taken = await waitForInstall(
      'downgrade',
      'dg',
      'version 1.0.0',
      (p) => p.status?.version === '1.0.0',
    );
    assert.equal(taken.status?.lastAttemptedVersion, '1.0.0');
    await waitForApp(
      'downgrade',
      'dg',
      'version 1.0.0',
      (a) => a.metadata?.annotations?.['packaging.carvel.dev/package-version'] === '1.0.0',
    );
  });
});

// ---------------------------------------------------------------------------

describe('the App of a PackageInstall', () => {
  const NS = 'app-build';

  test("is the Package template with the PackageInstall's overrides, owned and annotated", async () => {
    await createPackage(NS, 'build.test.carvel.dev', '1.0.0', {
      serviceAccountName: 'package-author-sa',
      noopDelete: true,
      fetch: [{ imgpkgBundle: { image: 'registry.corp.com/packages/build:1.0.0' } }],
      template: [
        { ytt: { paths: ['config/'], valuesFrom: [{ secretRef: { name: 'package-defaults' } }] } },
        { kbld: { paths: ['-', '.imgpkg/images.yml'] } },
      ],
      deploy: [{ kapp: { rawOptions: ['--wait-timeout=5m'] } }],
    });
    const pkgi = await createInstall(
      NS,
      'build',
      'build.test.carvel.dev',
      { constraints: '1.0.0' },
      {
        spec: {
          syncPeriod: '30m',
          defaultNamespace: 'apps',
          values: [
            { secretRef: { name: 'build-values' } },
            { secretRef: { name: 'more-values', key: 'v.yml' } },
          ],
        },
      },
    );
    const app = await waitForApp(
      NS,
      'build',
      'has its finalizer',
      (a) => (a.metadata?.finalizers ?? []).length > 0,
    );
    assert.equal(app.metadata?.name, 'build');
    assert.equal(app.metadata?.namespace, NS);
    assert.deepEqual(app.metadata?.annotations, {
      'packaging.carvel.dev/package-ref-name': 'build.test.carvel.dev',
      'packaging.carvel.dev/package-version': '1.0.0',
    });
    assert.deepEqual(
      app.metadata?.ownerReferences?.map((r) => ({ ...r })),
      [
        {
          apiVersion: PKGI_API,
          kind: 'PackageInstall',
          name: 'build',
          uid: pkgi.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    );
    assert.deepEqual(app.metadata?.finalizers, ['finalizers.kapp-ctrl.k14s.io/delete']);
    assert.deepEqual(app.spec, {
      serviceAccountName: 'installer',
      syncPeriod: '30m',
      defaultNamespace: 'apps',
      fetch: [
        {
          imgpkgBundle: {
            image: 'registry.corp.com/packages/build:1.0.0',
            secretRef: { name: 'build-fetch-0' },
          },
        },
      ],
      template: [
        {
          ytt: {
            paths: ['config/'],
            valuesFrom: [
              { secretRef: { name: 'package-defaults' } },
              { secretRef: { name: 'build-values' } },
              { secretRef: { name: 'more-values' } },
            ],
          },
        },
        { kbld: { paths: ['-', '.imgpkg/images.yml'] } },
      ],
      deploy: [{ kapp: { rawOptions: ['--wait-timeout=5m'] } }],
    });
    assertPlaceholder(await getSecret(NS, 'build-fetch-0'), {
      kind: 'PackageInstall',
      name: 'build',
      uid: pkgi.metadata.uid,
    });
  });

  test('puts the values on the first helmTemplate step when it comes before ytt', async () => {
    await createPackage(NS, 'helm.test.carvel.dev', '1.0.0', {
      fetch: [
        { helmChart: { name: 'nginx', version: '1.0.0', repository: { url: 'https://charts.corp.com' } } },
      ],
      template: [{ helmTemplate: { valuesFrom: [{ path: 'values.yml' }] } }, { ytt: { paths: ['-'] } }],
      deploy: [{ kapp: {} }],
    });
    await createInstall(
      NS,
      'helm',
      'helm.test.carvel.dev',
      { constraints: '1.0.0' },
      {
        spec: { values: [{ secretRef: { name: 'helm-values' } }] },
      },
    );
    const app = await waitForApp(NS, 'helm', 'exists');
    assert.deepEqual(app.spec?.template, [
      { helmTemplate: { valuesFrom: [{ path: 'values.yml' }, { secretRef: { name: 'helm-values' } }] } },
      { ytt: { paths: ['-'] } },
    ]);
    assert.deepEqual(app.spec?.fetch, [
      { helmChart: { name: 'nginx', version: '1.0.0', repository: { url: 'https://charts.corp.com' } } },
    ]);
  });

  test('gets a placeholder for each image and imgpkgBundle stage without secretRef (bundle at 0, image at 1)', async () => {
    await createPackage(NS, 'multi.test.carvel.dev', '1.0.0', {
      fetch: [
        { imgpkgBundle: { image: 'registry.corp.com/packages/multi:1.0.0' } },
        { image: { url: 'registry.corp.com/config/multi:1.0.0' }, path: 'config' },
        { http: { url: 'https://corp.com/multi.tgz' } },
        {
          git: { url: 'https://github.com/corp/multi', ref: 'origin/main', secretRef: { name: 'git-creds' } },
        },
        { image: { url: 'registry.corp.com/config/extra:1.0.0', secretRef: { name: 'own-creds' } } },
        { inline: { paths: { 'a.yml': 'a: 1' } } },
      ],
      template: [{ ytt: {} }],
      deploy: [{ kapp: {} }],
    });
    const pkgi = await createInstall(NS, 'multi', 'multi.test.carvel.dev', { constraints: '1.0.0' });
    const app = await waitForApp(NS, 'multi', 'exists');
    assert.deepEqual(app.spec?.fetch, [
      {
        imgpkgBundle: {
          image: 'registry.corp.com/packages/multi:1.0.0',
          secretRef: { name: 'multi-fetch-0' },
        },
      },
      {
        image: { url: 'registry.corp.com/config/multi:1.0.0', secretRef: { name: 'multi-fetch-1' } },
        path: 'config',
      },
      { http: { url: 'https://corp.com/multi.tgz' } },
      { git: { url: 'https://github.com/corp/multi', ref: 'origin/main', secretRef: { name: 'git-creds' } } },
      { image: { url: 'registry.corp.com/config/extra:1.0.0', secretRef: { name: 'own-creds' } } },
      { inline: { paths: { 'a.yml': 'a: 1' } } },
    ]);
    await waitFor(
      'two placeholders',
      async () => (await placeholdersOwnedBy(NS, pkgi.metadata.uid)).length === 2,
    );
    assert.deepEqual(await placeholdersOwnedBy(NS, pkgi.metadata.uid), ['multi-fetch-0', 'multi-fetch-1']);
    for (const name of ['multi-fetch-0', 'multi-fetch-1']) {
      assertPlaceholder(await getSecret(NS, name), {
        kind: 'PackageInstall',
        name: 'multi',
        uid: pkgi.metadata.uid,
      });
    }
  });

  test('never overwrites a placeholder the secret-sharing side filled, and puts back a deleted one', async () => {
    // Credentials exported to this namespace fill its placeholders.
    const creds = { auths: { 'registry.corp.com': { username: 'u', password: 'p', auth: 'dTpw' } } };
    await env.cluster.apply(`apiVersion: v1
kind: Secret
metadata: {name: corp-creds, namespace: lifecycle}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '${JSON.stringify(creds)}'
---
apiVersion: secretgen.carvel.dev/v1alpha1
kind: SecretExport
metadata: {name: corp-creds, namespace: lifecycle}
spec: {toNamespace: ${NS}}
`);
    const isFilled = (s: V1Secret) => JSON.stringify(dockerConfig(s)) === JSON.stringify(creds);
    await waitForObject<V1Secret>(env, Secrets, NS, 'multi-fetch-0', 'filled by secret sharing', isFilled);
    await waitForOperatorIdle(env);
    const offset = env.auditOffset();
    const old = await getSecret(NS, 'multi-fetch-1');
    await env.client.delete(Secrets, NS, 'multi-fetch-1');
    // The delete makes the PackageInstall reconcile: it recreates multi-fetch-1 (which sharing fills)
    // and does not write multi-fetch-0.
    await waitForObject<V1Secret>(
      env,
      Secrets,
      NS,
      'multi-fetch-1',
      'recreated and filled',
      (s) => s.metadata?.uid !== old?.metadata?.uid && isFilled(s),
    );
    await waitForOperatorIdle(env);
    const writes = env.operatorWritesSince(offset);
    assert.deepEqual(
      writes.filter((w) => w.includes('multi-fetch-0')),
      [],
    );
    assert.ok(isFilled((await getSecret(NS, 'multi-fetch-0'))!));
    await env.client.delete({ ...SecretExportResource, kind: SecretExportKind }, 'lifecycle', 'corp-creds');
    await waitForObject<V1Secret>(env, Secrets, NS, 'multi-fetch-0', 'emptied again', (s) => !isFilled(s));
  });

  test('the fetch-<i>-secret-name annotation sets secretRef of image, http, git, imgpkgBundle and helmChart.repository, with no placeholder', async () => {
    await createPackage(NS, 'ann.test.carvel.dev', '1.0.0', {
      fetch: [
        { imgpkgBundle: { image: 'registry.corp.com/packages/ann:1.0.0' } },
        { image: { url: 'registry.corp.com/config/ann:1.0.0', secretRef: { name: 'package-default' } } },
        { http: { url: 'https://corp.com/ann.tgz' } },
        { git: { url: 'https://github.com/corp/ann', ref: 'origin/main' } },
        { helmChart: { name: 'ann', repository: { url: 'https://charts.corp.com' } } },
      ],
      template: [{ ytt: {} }],
      deploy: [{ kapp: {} }],
    });
    const annotations: Record<string, string> = {};
    for (let i = 0; i < 5; i++)
      annotations[`ext.packaging.carvel.dev/fetch-${i}-secret-name`] = `secret-${i}`;
    const pkgi = await createInstall(
      NS,
      'ann',
      'ann.test.carvel.dev',
      { constraints: '1.0.0' },
      { annotations },
    );
    const app = await waitForApp(NS, 'ann', 'exists');
    assert.deepEqual(app.spec?.fetch, [
      { imgpkgBundle: { image: 'registry.corp.com/packages/ann:1.0.0', secretRef: { name: 'secret-0' } } },
      { image: { url: 'registry.corp.com/config/ann:1.0.0', secretRef: { name: 'secret-1' } } },
      { http: { url: 'https://corp.com/ann.tgz', secretRef: { name: 'secret-2' } } },
      { git: { url: 'https://github.com/corp/ann', ref: 'origin/main', secretRef: { name: 'secret-3' } } },
      {
        helmChart: {
          name: 'ann',
          repository: { url: 'https://charts.corp.com', secretRef: { name: 'secret-4' } },
        },
      },
    ]);
    await waitForInstall(NS, 'ann', 'mirrors its App', failedWith(SEE));
    assert.deepEqual(await placeholdersOwnedBy(NS, pkgi.metadata.uid), []);
  });

  test('an out-of-range index or an empty secret name gives a Warning Event naming the annotation', async () => {
    await createInstall(
      NS,
      'warn',
      'build.test.carvel.dev',
      { constraints: '1.0.0' },
      {
        annotations: {
          'ext.packaging.carvel.dev/fetch-0-secret-name': '',
          'ext.packaging.carvel.dev/fetch-3-secret-name': 'nowhere',
        },
      },
    );
    const expected = [
      'Warning EmptyFetchSecretName: Ignoring annotation ext.packaging.carvel.dev/fetch-0-secret-name: the secret name is empty',
      'Warning FetchSecretIndexOutOfRange: Ignoring annotation ext.packaging.carvel.dev/fetch-3-secret-name: the package has 1 fetch stage, so there is no fetch stage 3',
    ];
    await waitFor('both warnings', async () => {
      const events = await eventsAbout(env, NS, 'warn');
      return expected.every((e) => events.includes(e));
    });
    // The empty override is ignored: stage 0 uses its placeholder.
    const app = await waitForApp(NS, 'warn', 'exists');
    assert.equal(app.spec?.fetch?.[0]?.imgpkgBundle?.secretRef?.name, 'warn-fetch-0');
  });

  test('removes the placeholders of stages that disappear when the Package changes', async () => {
    await createPackage(NS, 'shrink.test.carvel.dev', '1.0.0', {
      fetch: [
        { imgpkgBundle: { image: 'registry.corp.com/packages/shrink:1.0.0' } },
        { image: { url: 'registry.corp.com/config/shrink:1.0.0' } },
      ],
      template: [{ ytt: {} }],
      deploy: [{ kapp: {} }],
    });
    const pkgi = await createInstall(NS, 'shrink', 'shrink.test.carvel.dev', { constraints: '>=1.0.0' });
    await waitFor(
      'two placeholders',
      async () => (await placeholdersOwnedBy(NS, pkgi.metadata.uid)).length === 2,
    );
    await createPackage(NS, 'shrink.test.carvel.dev', '1.1.0');
    await waitForGone(env, Secrets, NS, 'shrink-fetch-1');
    assert.deepEqual(await placeholdersOwnedBy(NS, pkgi.metadata.uid), ['shrink-fetch-0']);
    const app = await waitForApp(NS, 'shrink', 'one fetch stage', (a) => a.spec?.fetch?.length === 1);
    assert.equal(app.spec?.fetch?.[0]?.imgpkgBundle?.secretRef?.name, 'shrink-fetch-0');
  });

  test('an App controlled by someone else is not taken over', async () => {
    await env.cluster.apply(`apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: foreign, namespace: ${NS}}
spec:
  serviceAccountName: someone
  fetch: [{inline: {paths: {a.yml: "a: 1"}}}]
  template: [{ytt: {}}]
  deploy: [{kapp: {}}]
`);
    const before = await waitForApp(NS, 'foreign', 'exists');
    const pkgi = await createInstall(NS, 'foreign', 'build.test.carvel.dev', { constraints: '1.0.0' });
    const message = `App ${NS}/foreign already exists and is not controlled by this PackageInstall (it has no controller); it is left untouched: delete it or choose another PackageInstall name`;
    const failed = await waitForInstall(NS, 'foreign', 'refuses the App', failedWith(message));
    assert.equal(failed.status?.usefulErrorMessage, message);
    const app = await getApp(NS, 'foreign');
    assert.deepEqual(app?.spec, before.spec);
    assert.equal(app?.metadata?.ownerReferences, undefined);
    assert.deepEqual(await placeholdersOwnedBy(NS, pkgi.metadata.uid), []);
  });
});

// ---------------------------------------------------------------------------

describe('status', () => {
  const NS = 'app-build';

  test('the App reports one condition, friendlyDescription, usefulErrorMessage, observedGeneration and status.fetch', async () => {
    const app = await waitForApp(NS, 'build', 'failed', failedWith(unreachable(BUILD_IMAGE)));
    const s = app.status as RunStatus;
    const message = s.usefulErrorMessage!;
    assert.deepEqual(s, {
      observedGeneration: app.metadata?.generation,
      conditions: [
        {
          type: 'ReconcileFailed',
          status: 'True',
          message,
          lastTransitionTime: s.conditions?.[0]?.lastTransitionTime,
        },
      ],
      friendlyDescription: `Reconcile failed: ${message.length > 80 ? `${message.slice(0, 80)}...` : message}`,
      usefulErrorMessage: message,
      fetch: {
        startedAt: s.fetch?.startedAt,
        updatedAt: s.fetch?.updatedAt,
        exitCode: 1,
        error: message.replace('Fetching resources: ', ''),
      },
      // A network failure is retried on the failure backoff.
      consecutiveReconcileFailures: s.consecutiveReconcileFailures,
      consecutiveReconcileSuccesses: 0,
    });
    assert.ok((s.consecutiveReconcileFailures ?? 0) >= 1);
    assert.ok((await eventsAbout(env, NS, 'build')).includes(`Warning ReconcileFailed: ${message}`));
  });

  test('the PackageInstall mirrors its App', async () => {
    const pkgi = await waitForInstall(NS, 'build', 'mirrors', failedWith(SEE));
    assert.match(pkgi.status?.usefulErrorMessage ?? '', unreachable(BUILD_IMAGE));
    assert.deepEqual(pkgi.status, {
      observedGeneration: 1,
      conditions: [
        {
          type: 'ReconcileFailed',
          status: 'True',
          message: SEE,
          lastTransitionTime: pkgi.status?.conditions?.[0]?.lastTransitionTime,
        },
      ],
      friendlyDescription: `Reconcile failed: ${SEE}`,
      usefulErrorMessage: pkgi.status?.usefulErrorMessage,
      version: '1.0.0',
      lastAttemptedVersion: '1.0.0',
    });
    assert.deepEqual(pkgi.metadata?.finalizers, ['finalizers.packageinstall.packaging.carvel.dev/delete']);
  });

  test('kubectl get pkgi shows the package name and version; kubectl get app its description', async () => {
    // The App retries its fetch on the failure backoff: read a moment when it is not Reconciling.
    const pkgiRow = new RegExp(
      `^build\\s+build\\.test\\.carvel\\.dev\\s+1\\.0\\.0\\s+Reconcile failed: ${escape(SEE)}\\s+\\S+$`,
    );
    const [header] = await waitFor('the PackageInstall row', async () => {
      const lines = (await env.cluster.kubectl(['get', 'pkgi', '-n', NS, 'build'])).trim().split('\n');
      return pkgiRow.test(lines[1] ?? '') ? lines : undefined;
    });
    assert.match(header!, /^NAME\s+PACKAGE NAME\s+PACKAGE VERSION\s+DESCRIPTION\s+AGE$/);
    const app = await waitForApp(NS, 'build', 'failed', failedWith(unreachable(BUILD_IMAGE)));
    const appRow = new RegExp(`^build\\s+${escape(app.status!.friendlyDescription!)}\\s+\\S+$`);
    const [appHeader] = await waitFor('the App row', async () => {
      const lines = (await env.cluster.kubectl(['get', 'app', '-n', NS, 'build'])).trim().split('\n');
      return appRow.test(lines[1] ?? '') ? lines : undefined;
    });
    assert.match(appHeader!, /^NAME\s+DESCRIPTION\s+SINCE-DEPLOY\s+AGE$/);
  });

  test('a settled operator writes nothing across several resyncs but the backoff retries of unreachable fetches', async () => {
    await waitForOperatorIdle(env);
    const offset = env.auditOffset();
    await sleep(RESYNC_MS * 2 + 1000);
    const writes = env.operatorWritesSince(offset);
    // A fetch that failed at the network level runs again on the failure backoff (2^n s); its App
    // (or repository) goes Reconciling and back, and a PackageInstall mirrors that. Nothing else.
    const retry = /^patch (apps|packagerepositories|packageinstalls)\/status (\S+)\/(\S+) \(200\)$/;
    assert.deepEqual(
      writes.filter((w) => !retry.test(w)),
      [],
    );
    for (const write of writes) {
      const [, resource = '', ns = '', name = ''] = retry.exec(write)!;
      const rt = resource === 'packagerepositories' ? PackageRepositories : Apps;
      const obj = (await env.client.get(rt, ns, name)) as { status?: RunStatus } | undefined;
      assert.match(
        obj?.status?.usefulErrorMessage ?? '',
        /: (NETWORK|TIMEOUT): /,
        `${write} is no fetch retry`,
      );
    }
  });
});

// ---------------------------------------------------------------------------

describe('paused, canceled, deletion', () => {
  const NS = 'lifecycle';
  const REF = 'life.test.carvel.dev';

  before(async () => {
    await createPackage(NS, REF, '1.0.0');
  });

  test('a paused PackageInstall pauses its App: no fetch runs, both say Canceled/paused; unpausing runs it', async () => {
    await createInstall(NS, 'paused', REF, { constraints: '1.0.0' }, { spec: { paused: true } });
    const app = await waitForApp(
      NS,
      'paused',
      'paused',
      (a) => a.status?.friendlyDescription === 'Canceled/paused',
    );
    assert.equal(app.spec?.paused, true);
    assert.deepEqual(app.status, { observedGeneration: 1, friendlyDescription: 'Canceled/paused' });
    const pkgi = await waitForInstall(
      NS,
      'paused',
      'Canceled/paused',
      (p) => p.status?.friendlyDescription === 'Canceled/paused',
    );
    assert.equal(pkgi.status?.conditions?.length, 1);
    await env.client.mergePatch(PackageInstalls, NS, 'paused', { spec: { paused: false } });
    await waitForApp(NS, 'paused', 'fetch attempted', failedWith(unreachable(LIFE_IMAGE)));
    const resumed = await waitForInstall(NS, 'paused', 'mirrors the failure', failedWith(SEE));
    assert.equal(resumed.status?.friendlyDescription, `Reconcile failed: ${SEE}`);
    assert.equal((await getApp(NS, 'paused'))?.spec?.paused, false);
  });

  test('a canceled PackageInstall cancels its App', async () => {
    await createInstall(NS, 'canceled', REF, { constraints: '1.0.0' }, { spec: { canceled: true } });
    const app = await waitForApp(
      NS,
      'canceled',
      'canceled',
      (a) => a.status?.friendlyDescription === 'Canceled/paused',
    );
    assert.equal(app.spec?.canceled, true);
    assert.equal(app.status?.conditions, undefined);
    await waitForInstall(
      NS,
      'canceled',
      'Canceled/paused',
      (p) => p.status?.friendlyDescription === 'Canceled/paused',
    );
  });

  test('deleting a PackageInstall deletes its App and waits for it; the garbage collector removes its placeholder', async () => {
    const pkgi = await createInstall(NS, 'gone', REF, { constraints: '1.0.0' });
    await waitForApp(NS, 'gone', 'has its finalizer', (a) => (a.metadata?.finalizers ?? []).length > 0);
    await waitForObject<V1Secret>(env, Secrets, NS, 'gone-fetch-0', 'placeholder');
    await env.cluster.kubectl(['delete', 'pkgi', '-n', NS, 'gone', '--wait=false']);
    await waitForGone(env, Apps, NS, 'gone');
    await waitForGone(env, PackageInstalls, NS, 'gone');
    // kube-controller-manager learns about CRD kinds through discovery (every 30 s): allow for that.
    await waitForGone(env, Secrets, NS, 'gone-fetch-0', 90_000);
    assert.deepEqual(await placeholdersOwnedBy(NS, pkgi.metadata.uid), []);
  });

  test('an App that recorded a deploy is not dropped on deletion unless noopDelete is set', async () => {
    await createInstall(NS, 'keep', REF, { constraints: '1.0.0' });
    await waitForApp(NS, 'keep', 'failed', failedWith(unreachable(LIFE_IMAGE)));
    // As if kapp-controller had deployed it before this operator took over.
    const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await env.client.mergePatch(
      Apps,
      NS,
      'keep',
      { status: { deploy: { startedAt: at, updatedAt: at, finished: true, exitCode: 0 } } },
      'status',
    );
    await env.cluster.kubectl(['delete', 'pkgi', '-n', NS, 'keep', '--wait=false']);
    const deleteError =
      'Deleting resources: deploy stage 0 (kapp): not supported yet (with spec.noopDelete: true the App is removed and its deployed resources are left in place)';
    const app = await waitForApp(
      NS,
      'keep',
      'DeleteFailed',
      (a) => a.status?.conditions?.[0]?.type === 'DeleteFailed',
    );
    assert.equal(app.status?.conditions?.[0]?.message, deleteError);
    assert.equal(app.status?.usefulErrorMessage, deleteError);
    assert.equal(app.status?.friendlyDescription, `Delete failed: ${deleteError.slice(0, 80)}...`);
    const pkgi = await waitForInstall(
      NS,
      'keep',
      'DeleteFailed',
      (p) => p.status?.conditions?.[0]?.type === 'DeleteFailed',
    );
    assert.deepEqual(
      pkgi.status?.conditions?.map((c) => [c.type, c.message]),
      [['DeleteFailed', SEE]],
    );
    assert.equal(pkgi.status?.usefulErrorMessage, deleteError);
    assert.equal(pkgi.status?.friendlyDescription, `Delete failed: ${SEE}`);
    // noopDelete set now is passed on to the App, which then goes and leaves its resources.
    await env.client.mergePatch(PackageInstalls, NS, 'keep', { spec: { noopDelete: true } });
    await waitForGone(env, Apps, NS, 'keep');
    await waitForGone(env, PackageInstalls, NS, 'keep');
  });

  test('deleting a PackageRepository drops its finalizer; the garbage collector removes its placeholder', async () => {
    await waitForObject<V1Secret>(env, Secrets, 'repos', 'bundle-repo-fetch-0', 'placeholder');
    await env.cluster.kubectl(['delete', 'pkgr', '-n', 'repos', 'bundle-repo', '--wait=false']);
    await waitForGone(env, PackageRepositories, 'repos', 'bundle-repo');
    await waitForGone(env, Secrets, 'repos', 'bundle-repo-fetch-0', 90_000);
  });
});

// ---------------------------------------------------------------------------

describe('bad input', () => {
  const NS = 'bad-input';

  test('a Package whose name is not refName.version is rejected at admission', async () => {
    const r = await env.cluster.kubectlResult(
      ['apply', '-f', '-'],
      `apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata: {name: wrong.test.carvel.dev.2.0.0, namespace: ${NS}}
spec: {refName: wrong.test.carvel.dev, version: 1.0.0}
`,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /metadata\.name must be <spec\.refName>\.<spec\.version>/);
  });

  test('a Package whose version is not semver is rejected at admission', async () => {
    const r = await env.cluster.kubectlResult(
      ['apply', '-f', '-'],
      `apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata: {name: wrong.test.carvel.dev.1.0, namespace: ${NS}}
spec: {refName: wrong.test.carvel.dev, version: "1.0"}
`,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.version/);
    assert.equal((await env.client.list(Packages, { namespace: NS })).items.length, 0);
  });

  test('a PackageInstall without packageRef is rejected at admission; one without versionSelection fails clearly', async () => {
    const r = await env.cluster.kubectlResult(
      ['apply', '-f', '-'],
      `apiVersion: ${PKGI_API}
kind: PackageInstall
metadata: {name: no-ref, namespace: ${NS}}
spec: {serviceAccountName: sa}
`,
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.packageRef: Required value/);
    await createPackage(NS, 'bad.test.carvel.dev', '1.0.0');
    await createInstall(NS, 'no-selection', 'bad.test.carvel.dev', undefined);
    const pkgi = await waitForInstall(
      NS,
      'no-selection',
      'failed',
      failedWith('Expected spec.packageRef.versionSelection to be set'),
    );
    assert.equal(
      pkgi.status?.friendlyDescription,
      'Reconcile failed: Expected spec.packageRef.versionSelection to be set',
    );
    assert.equal(await getApp(NS, 'no-selection'), undefined);
  });

  test('an unparsable constraint fails with a clear message, an Event, and touches nothing else', async () => {
    const pkgi = await createInstall(NS, 'caret', 'bad.test.carvel.dev', { constraints: '^1.0.0' });
    const message = `Selecting versions: Parsing version constraint '^1.0.0': could not parse version "^1.0.0" in "^1.0.0" (^ and ~ ranges are not supported; use comparisons such as ">=1.2.0 <2.0.0")`;
    const failed = await waitForInstall(NS, 'caret', 'failed', failedWith(message));
    assert.equal(failed.status?.usefulErrorMessage, message);
    assert.equal(failed.status?.friendlyDescription, `Reconcile failed: ${message.slice(0, 80)}...`);
    assert.equal(await getApp(NS, 'caret'), undefined);
    assert.deepEqual(await placeholdersOwnedBy(NS, pkgi.metadata.uid), []);
    await waitFor('the Warning Event', async () =>
      (await eventsAbout(env, NS, 'caret')).includes(`Warning ReconcileFailed: ${message}`),
    );
  });

  test('values without secretRef fail with the field named', async () => {
    await createInstall(
      NS,
      'bad-values',
      'bad.test.carvel.dev',
      { constraints: '1.0.0' },
      { spec: { values: [{}] } },
    );
    await waitForInstall(
      NS,
      'bad-values',
      'failed',
      failedWith('Invalid fields: spec.values[0].secretRef: Required value'),
    );
    assert.equal(await getApp(NS, 'bad-values'), undefined);
  });
});

// ---------------------------------------------------------------------------

describe('App on its own', () => {
  const NS = 'standalone';

  test('a fetch stage it cannot run yet fails naming the stage, never succeeds; deleting it is immediate', async () => {
    await env.cluster.apply(`apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: from-git, namespace: ${NS}}
spec:
  serviceAccountName: deployer
  fetch:
  - inline: {paths: {a.yml: "a: 1"}}
  - git: {url: https://github.com/corp/config, ref: origin/main}
  template: [{ytt: {}}]
  deploy: [{kapp: {}}]
`);
    // The inline stage runs; the git stage has no runner yet.
    const message = 'Fetching resources: fetch stage 1 (git): not supported yet';
    const app = await waitForApp(NS, 'from-git', 'failed', failedWith(message));
    assert.equal(app.status?.friendlyDescription, `Reconcile failed: ${message}`);
    assert.deepEqual((app.status as RunStatus).fetch?.exitCode, 1);
    assert.deepEqual(app.metadata?.finalizers, ['finalizers.kapp-ctrl.k14s.io/delete']);
    await env.cluster.kubectl(['delete', 'app', '-n', NS, 'from-git', '--wait=false']);
    await waitForGone(env, Apps, NS, 'from-git');
  });

  test('an App without fetch stages fails with a clear message', async () => {
    await env.cluster.apply(`apiVersion: kappctrl.k14s.io/v1alpha1
kind: App
metadata: {name: empty, namespace: ${NS}}
spec: {serviceAccountName: deployer, template: [{ytt: {}}], deploy: [{kapp: {}}]}
`);
    await waitForApp(
      NS,
      'empty',
      'failed',
      failedWith('Fetching resources: expected at least one fetch stage in spec.fetch'),
    );
  });
});

// ---------------------------------------------------------------------------

describe('the seed scenario ("Bringing it all together")', () => {
  const seed = readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'seed-examples.yaml'), 'utf8');
  const seedPackage = readFileSync(
    join(REPO_ROOT, 'e2e', 'fixtures', 'packaging', 'seed-package.yaml'),
    'utf8',
  );

  before(async () => {
    await env.cluster.apply(seedPackage);
    await env.cluster.apply(seed);
  });

  test('the YAML of the docs applies unchanged and every fetch is wired to the right Secret', async () => {
    const repoPlaceholder = await waitForObject<V1Secret>(
      env,
      Secrets,
      GLOBAL,
      'e2e-repo.test.carvel.dev-fetch-0',
      'repository placeholder',
    );
    const repo = await env.client.get(PackageRepositories, GLOBAL, 'e2e-repo.test.carvel.dev');
    assert.deepEqual(
      repoPlaceholder.metadata?.ownerReferences?.map((r) => ({ ...r })),
      [
        {
          apiVersion: PKGI_API,
          kind: 'PackageRepository',
          name: 'e2e-repo.test.carvel.dev',
          uid: repo!.metadata!.uid,
        },
      ],
    );
    // simple-package-repository names its Secret: no placeholder.
    await waitForObject<PackageRepository & { status?: RunStatus }>(
      env,
      PackageRepositories,
      'default',
      'simple-package-repository',
      'reconciled',
      failedWith(missingSecret('my-registry-creds', 'default')),
    );
    assert.equal(await getSecret('default', 'simple-package-repository-fetch-0'), undefined);
    // pkg-demo: its bundle stage uses the placeholder pkg-demo-fetch-0.
    const demo = await waitForApp('default', 'pkg-demo', 'exists');
    assert.equal(demo.spec?.fetch?.[0]?.imgpkgBundle?.secretRef?.name, 'pkg-demo-fetch-0');
    await waitForObject<V1Secret>(env, Secrets, 'default', 'pkg-demo-fetch-0', 'PackageInstall placeholder');
    // simple-app-with-secret: the annotation names the Secret, and no placeholder is made for that stage.
    const simple = await waitForApp('default', 'simple-app-with-secret', 'exists');
    assert.deepEqual(simple.spec?.fetch, [
      {
        imgpkgBundle: {
          image: 'registry.corp.com/packages/simple-app:1.0.0',
          secretRef: { name: 'simple-app-secret' },
        },
      },
    ]);
    assert.equal(await getSecret('default', 'simple-app-with-secret-fetch-0'), undefined);
  });

  test('the secret-sharing operator fills the placeholders from the SecretExport', async (t) => {
    if (!env.sharingRunning) {
      t.todo('pending: the secret-sharing controllers are not registered in this build');
      return;
    }
    const filled = (s: V1Secret) => Object.keys((dockerConfig(s) as { auths: object }).auths).length > 0;
    for (const [ns, name] of [
      [GLOBAL, 'e2e-repo.test.carvel.dev-fetch-0'],
      ['default', 'pkg-demo-fetch-0'],
      ['default', 'reg-creds'],
    ] as const) {
      const secret = await waitForObject<V1Secret>(env, Secrets, ns, name, 'filled', filled);
      const auths = (
        dockerConfig(secret) as { auths: Record<string, { username?: string; password?: string }> }
      ).auths;
      assert.deepEqual(Object.keys(auths), ['index.docker.io'], `${ns}/${name}`);
      assert.equal(auths['index.docker.io']?.username, 'user...');
      assert.equal(auths['index.docker.io']?.password, 'password...');
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
