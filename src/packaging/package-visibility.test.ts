import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Package } from './types.js';
import {
  DEFAULT_GLOBAL_PACKAGING_NAMESPACE,
  EXCLUDE_GLOBAL_PACKAGES_ANNOTATION,
  globalPackagesVisible,
  packageNamespaceVisibleTo,
  visiblePackages,
} from './package-visibility.js';

const GLOBAL = DEFAULT_GLOBAL_PACKAGING_NAMESPACE;

function pkg(namespace: string, version: string, marker = namespace): Package {
  return {
    metadata: { name: `pkg.test.carvel.dev.${version}`, namespace },
    spec: { refName: 'pkg.test.carvel.dev', version, releaseNotes: marker },
  };
}

const describeVisible = (list: Package[]) => list.map((p) => `${p.metadata?.namespace}:${p.spec?.version}`);

describe('visiblePackages', () => {
  const cases: {
    name: string;
    namespace: string;
    annotations?: Record<string, string>;
    globalNamespace?: string;
    namespaced: Package[];
    global: Package[];
    want: string[];
  }[] = [
    {
      name: 'a namespace sees its own and the global Packages',
      namespace: 'default',
      namespaced: [pkg('default', '1.0.0')],
      global: [pkg(GLOBAL, '2.0.0')],
      want: ['default:1.0.0', `${GLOBAL}:2.0.0`],
    },
    {
      name: 'a namespaced Package of the same name wins over the global one',
      namespace: 'default',
      namespaced: [pkg('default', '1.0.0')],
      global: [pkg(GLOBAL, '1.0.0'), pkg(GLOBAL, '1.1.0')],
      want: ['default:1.0.0', `${GLOBAL}:1.1.0`],
    },
    {
      name: 'the exclude-global-packages annotation hides global Packages',
      namespace: 'default',
      annotations: { [EXCLUDE_GLOBAL_PACKAGES_ANNOTATION]: '' },
      namespaced: [pkg('default', '1.0.0')],
      global: [pkg(GLOBAL, '2.0.0')],
      want: ['default:1.0.0'],
    },
    {
      name: 'the exclude annotation counts by presence, whatever its value',
      namespace: 'default',
      annotations: { [EXCLUDE_GLOBAL_PACKAGES_ANNOTATION]: 'false' },
      namespaced: [],
      global: [pkg(GLOBAL, '2.0.0')],
      want: [],
    },
    {
      name: 'unrelated namespace annotations do not hide global Packages',
      namespace: 'default',
      annotations: { 'example.com/other': '' },
      namespaced: [],
      global: [pkg(GLOBAL, '2.0.0')],
      want: [`${GLOBAL}:2.0.0`],
    },
    {
      name: 'the global namespace itself sees only its own Packages once',
      namespace: GLOBAL,
      namespaced: [pkg(GLOBAL, '2.0.0')],
      global: [pkg(GLOBAL, '2.0.0')],
      want: [`${GLOBAL}:2.0.0`],
    },
    {
      name: 'a configured global namespace replaces the default one',
      namespace: 'default',
      globalNamespace: 'my-global',
      namespaced: [],
      global: [pkg('my-global', '3.0.0')],
      want: ['my-global:3.0.0'],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const got = visiblePackages({
        namespace: c.namespace,
        namespaceAnnotations: c.annotations,
        globalNamespace: c.globalNamespace,
        namespaced: c.namespaced,
        global: c.global,
      });
      assert.deepEqual(describeVisible(got).sort(), [...c.want].sort());
    });
  }

  it('returns a deterministic order whatever the input order', () => {
    const a = visiblePackages({
      namespace: 'default',
      namespaced: [pkg('default', '2.0.0'), pkg('default', '1.0.0')],
      global: [pkg(GLOBAL, '3.0.0')],
    });
    const b = visiblePackages({
      namespace: 'default',
      namespaced: [pkg('default', '1.0.0'), pkg('default', '2.0.0')],
      global: [pkg(GLOBAL, '3.0.0')],
    });
    assert.deepEqual(describeVisible(a), describeVisible(b));
  });
});

describe('globalPackagesVisible / packageNamespaceVisibleTo', () => {
  const cases: { name: string; got: boolean; want: boolean }[] = [
    {
      name: 'global Packages are visible in an ordinary namespace',
      got: globalPackagesVisible('ns', {}),
      want: true,
    },
    {
      name: 'global Packages are hidden by the annotation',
      got: globalPackagesVisible('ns', { [EXCLUDE_GLOBAL_PACKAGES_ANNOTATION]: '' }),
      want: false,
    },
    {
      name: 'a Package in the install namespace matters to it',
      got: packageNamespaceVisibleTo('ns', 'ns', undefined),
      want: true,
    },
    {
      name: 'a Package in the global namespace matters to other namespaces',
      got: packageNamespaceVisibleTo(GLOBAL, 'ns', undefined),
      want: true,
    },
    {
      name: 'a global Package does not matter to an excluding namespace',
      got: packageNamespaceVisibleTo(GLOBAL, 'ns', { [EXCLUDE_GLOBAL_PACKAGES_ANNOTATION]: '' }),
      want: false,
    },
    {
      name: 'a Package of another ordinary namespace does not matter',
      got: packageNamespaceVisibleTo('other', 'ns', undefined),
      want: false,
    },
  ];
  for (const c of cases) void it(c.name, () => assert.equal(c.got, c.want));
});
