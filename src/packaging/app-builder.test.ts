import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { App, AppSpec, Package, PackageInstall, PackageInstallSpec, TemplateStep } from './types.js';
import {
  MANUALLY_CONTROLLED_ANNOTATION,
  buildApp,
  secretNamesFromAnnotation,
  validatePackageInstallValues,
} from './app-builder.js';
import { parseFetchSecretAnnotations, planFetchSecrets } from './fetch-secrets.js';

function install(spec: PackageInstallSpec = {}, annotations?: Record<string, string>): PackageInstall {
  return {
    apiVersion: 'packaging.carvel.dev/v1alpha1',
    kind: 'PackageInstall',
    metadata: {
      name: 'simple-app',
      namespace: 'default',
      uid: 'pkgi-uid',
      ...(annotations ? { annotations } : {}),
    },
    spec: {
      serviceAccountName: 'default-ns-sa',
      packageRef: { refName: 'simple-app.corp.com', versionSelection: { constraints: '1.0.0' } },
      ...spec,
    },
  };
}

function pkg(template: AppSpec): Package {
  return {
    metadata: { name: 'simple-app.corp.com.1.0.0', namespace: 'default' },
    spec: { refName: 'simple-app.corp.com', version: '1.0.0', template: { spec: template } },
  };
}

const bundleTemplate = (template: TemplateStep[] = [{ ytt: { paths: ['config/'] } }]): AppSpec => ({
  fetch: [{ imgpkgBundle: { image: 'registry.corp.com/packages/simple-app:1.0.0' } }],
  template,
  deploy: [{ kapp: {} }],
});

function build(pkgi: PackageInstall, p: Package, existingApp?: App): App {
  const fetch = p.spec?.template?.spec?.fetch ?? [];
  const parsed = parseFetchSecretAnnotations(pkgi.metadata?.annotations, fetch.length);
  const plan = planFetchSecrets(pkgi.metadata?.name ?? '', fetch, parsed.overrides);
  return buildApp(pkgi, p, plan, { existingApp });
}

describe('buildApp', () => {
  it('builds the App of the seed example: metadata, controller ownerReference, annotations, spec', () => {
    const app = build(install(), pkg(bundleTemplate()));
    assert.deepEqual(app, {
      apiVersion: 'kappctrl.k14s.io/v1alpha1',
      kind: 'App',
      metadata: {
        name: 'simple-app',
        namespace: 'default',
        annotations: {
          'packaging.carvel.dev/package-ref-name': 'simple-app.corp.com',
          'packaging.carvel.dev/package-version': '1.0.0',
        },
        ownerReferences: [
          {
            apiVersion: 'packaging.carvel.dev/v1alpha1',
            kind: 'PackageInstall',
            name: 'simple-app',
            uid: 'pkgi-uid',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        fetch: [
          {
            imgpkgBundle: {
              image: 'registry.corp.com/packages/simple-app:1.0.0',
              secretRef: { name: 'simple-app-fetch-0' },
            },
          },
        ],
        template: [{ ytt: { paths: ['config/'] } }],
        deploy: [{ kapp: {} }],
        serviceAccountName: 'default-ns-sa',
        syncPeriod: '10m',
      },
    });
  });

  const specCases: {
    name: string;
    spec: PackageInstallSpec;
    template?: Partial<AppSpec>;
    want: Partial<AppSpec>;
  }[] = [
    {
      name: 'copies syncPeriod, noopDelete, paused, canceled, cluster and defaultNamespace when set',
      spec: {
        syncPeriod: '1m',
        noopDelete: true,
        paused: true,
        canceled: true,
        cluster: { kubeconfigSecretRef: { name: 'kc', key: 'value' } },
        defaultNamespace: 'apps',
      },
      want: {
        syncPeriod: '1m',
        noopDelete: true,
        paused: true,
        canceled: true,
        cluster: { kubeconfigSecretRef: { name: 'kc', key: 'value' } },
        defaultNamespace: 'apps',
      },
    },
    {
      name: 'defaults syncPeriod to 10m like upstream',
      spec: {},
      want: { syncPeriod: '10m' },
    },
    {
      name: "drops the template's own install-level fields the PackageInstall does not set, as upstream overwrites them",
      spec: { serviceAccountName: 'sa' },
      template: { paused: true, defaultNamespace: 'from-package', cluster: { namespace: 'x' } },
      want: { serviceAccountName: 'sa', paused: undefined, defaultNamespace: undefined, cluster: undefined },
    },
  ];
  for (const c of specCases) {
    it(c.name, () => {
      const app = build(install(c.spec), pkg({ ...bundleTemplate(), ...c.template }));
      for (const [key, value] of Object.entries(c.want)) assert.deepEqual(app.spec?.[key], value, key);
    });
  }

  const valuesCases: {
    name: string;
    template: TemplateStep[];
    annotations?: Record<string, string>;
    want: TemplateStep[];
  }[] = [
    {
      name: 'appends values secrets to valuesFrom of the first ytt step',
      template: [{ ytt: { paths: ['a'], valuesFrom: [{ path: 'values.yml' }] } }, { ytt: { paths: ['b'] } }],
      want: [
        {
          ytt: {
            paths: ['a'],
            valuesFrom: [
              { path: 'values.yml' },
              { secretRef: { name: 'v1' } },
              { secretRef: { name: 'v2' } },
            ],
          },
        },
        { ytt: { paths: ['b'] } },
      ],
    },
    {
      name: 'appends values to helmTemplate when there is no ytt',
      template: [{ helmTemplate: { path: 'chart/' } }, { kbld: { paths: ['-'] } }],
      want: [
        {
          helmTemplate: {
            path: 'chart/',
            valuesFrom: [{ secretRef: { name: 'v1' } }, { secretRef: { name: 'v2' } }],
          },
        },
        { kbld: { paths: ['-'] } },
      ],
    },
    {
      name: 'appends values only to whichever of helmTemplate and ytt comes first',
      template: [{ helmTemplate: { path: 'chart/' } }, { ytt: { paths: ['-'] } }],
      want: [
        {
          helmTemplate: {
            path: 'chart/',
            valuesFrom: [{ secretRef: { name: 'v1' } }, { secretRef: { name: 'v2' } }],
          },
        },
        { ytt: { paths: ['-'] } },
      ],
    },
    {
      name: 'puts values into ytt inline.pathsFrom with the ytt-data-values-overlays annotation',
      template: [{ ytt: { paths: ['a'] } }],
      annotations: { 'ext.packaging.carvel.dev/ytt-data-values-overlays': '' },
      want: [
        {
          ytt: {
            paths: ['a'],
            inline: { pathsFrom: [{ secretRef: { name: 'v1' } }, { secretRef: { name: 'v2' } }] },
          },
        },
      ],
    },
    {
      name: 'adds ytt-paths-from-secret-name secrets ordered by suffix to the first ytt step',
      template: [{ ytt: { paths: ['a'] } }],
      annotations: {
        'ext.packaging.carvel.dev/ytt-paths-from-secret-name.b': 'second',
        'ext.packaging.carvel.dev/ytt-paths-from-secret-name': 'first',
        'ext.packaging.carvel.dev/ytt-paths-from-secret-name.c': 'third',
      },
      want: [
        {
          ytt: {
            paths: ['a'],
            inline: {
              pathsFrom: [
                { secretRef: { name: 'first' } },
                { secretRef: { name: 'second' } },
                { secretRef: { name: 'third' } },
              ],
            },
            valuesFrom: [{ secretRef: { name: 'v1' } }, { secretRef: { name: 'v2' } }],
          },
        },
      ],
    },
    {
      name: 'applies the helm template name, namespace and values-from annotations before the values',
      template: [{ helmTemplate: { path: 'chart/', name: 'orig' } }],
      annotations: {
        'ext.packaging.carvel.dev/helm-template-name': 'renamed',
        'ext.packaging.carvel.dev/helm-template-namespace': 'ns2',
        'ext.packaging.carvel.dev/helm-template-values-from-secret-name': 'helm-extra',
      },
      want: [
        {
          helmTemplate: {
            path: 'chart/',
            name: 'renamed',
            namespace: 'ns2',
            valuesFrom: [
              { secretRef: { name: 'helm-extra' } },
              { secretRef: { name: 'v1' } },
              { secretRef: { name: 'v2' } },
            ],
          },
        },
      ],
    },
    {
      name: 'leaves templates without ytt or helmTemplate alone',
      template: [{ kbld: { paths: ['-'] } }],
      want: [{ kbld: { paths: ['-'] } }],
    },
  ];
  for (const c of valuesCases) {
    it(c.name, () => {
      const pkgi = install(
        { values: [{ secretRef: { name: 'v1', key: 'ignored-key' } }, { secretRef: { name: 'v2' } }] },
        c.annotations,
      );
      const app = build(pkgi, pkg(bundleTemplate(c.template)));
      assert.deepEqual(app.spec?.template, c.want);
    });
  }

  it('takes fetch stages from the plan, with annotation override and placeholders', () => {
    const p = pkg({
      fetch: [
        { imgpkgBundle: { image: 'registry.corp.com/b:1' } },
        { image: { url: 'registry.corp.com/i:1' } },
        { git: { url: 'https://git/x', ref: 'main' } },
      ],
      template: [],
      deploy: [],
    });
    const app = build(install({}, { 'ext.packaging.carvel.dev/fetch-2-secret-name': 'git-creds' }), p);
    assert.deepEqual(app.spec?.fetch, [
      { imgpkgBundle: { image: 'registry.corp.com/b:1', secretRef: { name: 'simple-app-fetch-0' } } },
      { image: { url: 'registry.corp.com/i:1', secretRef: { name: 'simple-app-fetch-1' } } },
      { git: { url: 'https://git/x', ref: 'main', secretRef: { name: 'git-creds' } } },
    ]);
  });

  it('does not modify its inputs and is deterministic', () => {
    const pkgi = install({ values: [{ secretRef: { name: 'v1' } }] });
    const p = pkg(bundleTemplate([{ helmTemplate: {} }]));
    const before = structuredClone([pkgi, p]);
    const a = build(pkgi, p);
    const b = build(pkgi, p);
    assert.deepEqual([pkgi, p], before);
    assert.deepEqual(a, b);
    assert.equal(JSON.stringify(a), JSON.stringify(b));
    (a.spec?.template?.[0]?.helmTemplate?.valuesFrom ?? []).push({ path: 'mutated' });
    assert.deepEqual([pkgi, p], before, 'the output shares nothing with the inputs');
  });

  it('keeps labels and foreign annotations of an existing App and refreshes ours', () => {
    const existing: App = {
      metadata: {
        name: 'simple-app',
        namespace: 'default',
        labels: { team: 'a' },
        annotations: { 'example.com/note': 'x', 'packaging.carvel.dev/package-version': '0.9.0' },
      },
    };
    const app = build(install(), pkg(bundleTemplate()), existing);
    assert.deepEqual(app.metadata?.labels, { team: 'a' });
    assert.deepEqual(app.metadata?.annotations, {
      'example.com/note': 'x',
      'packaging.carvel.dev/package-ref-name': 'simple-app.corp.com',
      'packaging.carvel.dev/package-version': '1.0.0',
    });
  });

  it('returns a manually controlled App unchanged', () => {
    const existing: App = {
      metadata: {
        name: 'simple-app',
        namespace: 'default',
        annotations: { [MANUALLY_CONTROLLED_ANNOTATION]: '' },
      },
      spec: { fetch: [{ inline: {} }] },
    };
    assert.deepEqual(build(install(), pkg(bundleTemplate()), existing), existing);
  });
});

describe('validatePackageInstallValues', () => {
  const cases: { name: string; spec: PackageInstallSpec; want: string | undefined }[] = [
    { name: 'no values is fine', spec: {}, want: undefined },
    {
      name: 'values with secretRef are fine',
      spec: { values: [{ secretRef: { name: 'a' } }] },
      want: undefined,
    },
    {
      name: 'a values entry without secretRef is reported by index',
      spec: { values: [{ secretRef: { name: 'a' } }, {}] },
      want: 'Invalid fields: spec.values[1].secretRef: Required value',
    },
    {
      name: 'more values than the cap (an object stored before the CRD had maxItems)',
      spec: { values: Array.from({ length: 101 }, () => ({ secretRef: { name: 'a' } })) },
      want: 'Invalid fields: spec.values has 101 items, more than the limit of 100',
    },
  ];
  for (const c of cases)
    it(c.name, () => assert.equal(validatePackageInstallValues(install(c.spec)), c.want));
});

describe('secretNamesFromAnnotation', () => {
  it('orders the plain key first, then suffixes in byte order, and ignores look-alike keys', () => {
    const key = 'ext.packaging.carvel.dev/ytt-paths-from-secret-name';
    assert.deepEqual(
      secretNamesFromAnnotation(
        { [`${key}.b`]: 'B', [`${key}.A`]: 'A', [key]: 'plain', [`${key}x`]: 'no' },
        key,
      ),
      ['plain', 'A', 'B'],
    );
  });
});
