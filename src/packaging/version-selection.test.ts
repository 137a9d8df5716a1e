import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Package, PackageSpec } from './types.js';
import {
  DOWNGRADABLE_ANNOTATION,
  SEE_USEFUL_ERROR_MESSAGE,
  checkDowngrade,
  isExactPrereleaseConstraint,
  parseConstraint,
  selectVersion,
  selectVersionForInstall,
} from './version-selection.js';
import semver from 'semver';

const REF = 'pkg.test.carvel.dev';

function pkg(version: string, extra: Partial<PackageSpec> = {}, refName = REF): Package {
  return {
    apiVersion: 'data.packaging.carvel.dev/v1alpha1',
    kind: 'Package',
    metadata: { name: `${refName}.${version}`, namespace: 'default' },
    spec: { refName, version, ...extra },
  };
}

const pkgs = (...versions: string[]) => versions.map((v) => pkg(v));

describe('selectVersion', () => {
  const cases: {
    name: string;
    candidates: Package[];
    constraints?: string;
    prereleases?: { identifiers?: string[] } | null;
    annotations?: Record<string, string>;
    kappControllerVersion?: string;
    kubernetesVersion?: string;
    want: string | { error: string | RegExp };
  }[] = [
    {
      name: 'an exact constraint picks that version',
      candidates: pkgs('1.0.0', '1.1.0', '2.0.0'),
      constraints: '1.0.0',
      want: '1.0.0',
    },
    {
      name: 'without constraints the highest version wins',
      candidates: pkgs('1.0.0', '2.0.0', '1.10.0'),
      want: '2.0.0',
    },
    {
      name: 'versions compare numerically, not as strings',
      candidates: pkgs('1.9.0', '1.10.0', '1.2.0'),
      constraints: '>=1.0.0',
      want: '1.10.0',
    },
    {
      name: 'a space means AND',
      candidates: pkgs('1.0.0', '1.5.0', '2.0.0'),
      constraints: '>=1.0.0 <2.0.0',
      want: '1.5.0',
    },
    {
      name: 'an operator followed by a space still binds to its version',
      candidates: pkgs('1.0.0', '1.5.0', '2.0.0'),
      constraints: '>= 1.0.0 < 2.0.0',
      want: '1.5.0',
    },
    {
      name: '|| means OR and the highest of either side wins',
      candidates: pkgs('1.0.0', '2.5.0', '3.1.0'),
      constraints: '<2.0.0 || >=3.0.0',
      want: '3.1.0',
    },
    {
      name: '|| with AND groups on both sides',
      candidates: pkgs('1.2.0', '1.9.0', '2.5.0', '3.1.0'),
      constraints: '>=1.0.0 <1.5.0 || >2.0.0 <3.0.0',
      want: '2.5.0',
    },
    {
      name: '!= excludes one version',
      candidates: pkgs('1.0.0', '1.1.0'),
      constraints: '!=1.1.0',
      want: '1.0.0',
    },
    {
      name: 'a minor x-range (1.x) stays within the major version',
      candidates: pkgs('1.0.0', '1.9.3', '2.0.0'),
      constraints: '1.x',
      want: '1.9.3',
    },
    {
      name: 'a patch x-range (1.2.x) stays within the minor version',
      candidates: pkgs('1.2.0', '1.2.7', '1.3.0'),
      constraints: '1.2.x',
      want: '1.2.7',
    },
    {
      name: '<=1.2.x includes all 1.2 patches',
      candidates: pkgs('1.2.9', '1.3.0'),
      constraints: '<=1.2.x',
      want: '1.2.9',
    },
    {
      name: '>1.x starts at the next major',
      candidates: pkgs('1.9.0', '2.0.0', '3.0.0'),
      constraints: '>1.x <3.0.0',
      want: '2.0.0',
    },
    {
      name: '1.x.x means the whole major version',
      candidates: pkgs('1.0.0', '1.4.0', '2.0.0'),
      constraints: '1.x.x',
      want: '1.4.0',
    },
    {
      name: '!=1.x excludes the whole major version',
      candidates: pkgs('1.4.0', '2.0.0', '0.9.0'),
      constraints: '!=1.x',
      want: '2.0.0',
    },
    {
      name: 'a leading v in the constraint is tolerated',
      candidates: pkgs('1.0.0', '1.1.0'),
      constraints: 'v1.0.0',
      want: '1.0.0',
    },
    {
      name: 'a leading v after an operator is tolerated',
      candidates: pkgs('1.0.0', '1.1.0', '2.0.0'),
      constraints: '>=v1.0.0 <v2.0.0',
      want: '1.1.0',
    },
    {
      name: 'prereleases are dropped when prereleases is not set',
      candidates: pkgs('1.0.0', '2.0.0-beta.1'),
      constraints: '>=1.0.0',
      want: '1.0.0',
    },
    {
      name: 'prereleases: {} admits all prereleases',
      candidates: pkgs('1.0.0', '2.0.0-beta.1'),
      constraints: '>=1.0.0',
      prereleases: {},
      want: '2.0.0-beta.1',
    },
    {
      name: 'once prereleases are on, >=2.0.0 matches 3.0.0-beta.1',
      candidates: pkgs('2.0.0', '3.0.0-beta.1'),
      constraints: '>=2.0.0',
      prereleases: {},
      want: '3.0.0-beta.1',
    },
    {
      name: 'once prereleases are on, <2.0.0 admits 2.0.0-rc.1 (precedence, not npm tuple rules)',
      candidates: pkgs('1.0.0', '2.0.0-rc.1', '2.0.0'),
      constraints: '<2.0.0',
      prereleases: {},
      want: '2.0.0-rc.1',
    },
    {
      name: 'prerelease identifiers keep only prereleases containing one of them',
      candidates: pkgs('1.0.0', '2.0.0-beta.1', '3.0.0-alpha.1'),
      prereleases: { identifiers: ['beta'] },
      want: '2.0.0-beta.1',
    },
    {
      name: 'prerelease identifiers never drop normal releases',
      candidates: pkgs('4.0.0', '3.0.0-alpha.1'),
      prereleases: { identifiers: ['beta'] },
      want: '4.0.0',
    },
    {
      name: 'numeric prerelease parts never match an identifier',
      candidates: pkgs('1.0.0', '2.0.0-1'),
      prereleases: { identifiers: ['1'] },
      want: '1.0.0',
    },
    {
      name: 'an exact prerelease constraint turns prereleases on',
      candidates: pkgs('1.0.0', '2.0.0-rc.1'),
      constraints: '2.0.0-rc.1',
      want: '2.0.0-rc.1',
    },
    {
      name: 'an exact prerelease constraint written with = turns prereleases on',
      candidates: pkgs('1.0.0', '2.0.0-rc.1'),
      constraints: '=2.0.0-rc.1',
      want: '2.0.0-rc.1',
    },
    {
      name: 'a prerelease inside a range does not turn prereleases on',
      candidates: pkgs('1.0.0', '2.0.0-rc.2'),
      constraints: '>=2.0.0-rc.1',
      want: {
        error:
          'Expected to find at least one version, but did not (details: all=2 -> after-prereleases-filter=1 -> after-kapp-controller-version-check=1 -> after-constraints-filter=0)',
      },
    },
    {
      name: 'other refNames are ignored',
      candidates: [pkg('9.0.0', {}, 'other.test.carvel.dev'), pkg('1.0.0')],
      want: '1.0.0',
    },
    {
      name: 'no candidate with this refName gives Package not found',
      candidates: [pkg('1.0.0', {}, 'other.test.carvel.dev')],
      constraints: '1.0.0',
      want: { error: `Package ${REF} not found` },
    },
    {
      name: 'no candidates at all gives Package not found',
      candidates: [],
      want: { error: `Package ${REF} not found` },
    },
    {
      name: 'nothing matching the constraint gives the details chain',
      candidates: pkgs('1.0.0', '1.1.0', '2.0.0-beta.1'),
      constraints: '>=3.0.0',
      want: {
        error:
          'Expected to find at least one version, but did not (details: all=3 -> after-prereleases-filter=2 -> after-kapp-controller-version-check=2 -> after-constraints-filter=0)',
      },
    },
    {
      name: 'without constraints the details chain has no constraints step',
      candidates: pkgs('2.0.0-beta.1'),
      want: {
        error:
          'Expected to find at least one version, but did not (details: all=1 -> after-prereleases-filter=0 -> after-kapp-controller-version-check=0)',
      },
    },
    {
      name: 'unparsable Package versions are not counted in all=',
      candidates: pkgs('1.0', 'banana', '1.0.0'),
      constraints: '2.0.0',
      want: {
        error:
          'Expected to find at least one version, but did not (details: all=1 -> after-prereleases-filter=1 -> after-kapp-controller-version-check=1 -> after-constraints-filter=0)',
      },
    },
    {
      name: 'an unparsable constraint names the constraint',
      candidates: pkgs('1.0.0'),
      constraints: '>=1.0',
      want: {
        error: /^Selecting versions: Parsing version constraint '>=1\.0': could not parse version "1\.0"/,
      },
    },
    {
      name: 'a caret range is rejected as upstream does',
      candidates: pkgs('1.0.0'),
      constraints: '^1.0.0',
      want: { error: /Parsing version constraint '\^1\.0\.0': .*\^ and ~ ranges are not supported/ },
    },
    {
      name: 'a dangling || is rejected',
      candidates: pkgs('1.0.0'),
      constraints: '>=1.0.0 ||',
      want: { error: /Parsing version constraint '>=1\.0\.0 \|\|': empty alternative/ },
    },
    {
      name: 'a kapp-controller version constraint filters when the version is known',
      candidates: [
        pkg('1.0.0'),
        pkg('2.0.0', { kappControllerVersionSelection: { constraints: '>=0.60.0' } }),
      ],
      kappControllerVersion: 'v0.53.1-dev+abc',
      want: '1.0.0',
    },
    {
      name: 'the kapp-controller check is skipped with the ignore annotation',
      candidates: [
        pkg('1.0.0'),
        pkg('2.0.0', { kappControllerVersionSelection: { constraints: '>=0.60.0' } }),
      ],
      kappControllerVersion: '0.53.0',
      annotations: { 'packaging.carvel.dev/ignore-kapp-controller-version-selection': '' },
      want: '2.0.0',
    },
    {
      name: 'the kubernetes check adds its own details step',
      candidates: [pkg('1.0.0', { kubernetesVersionSelection: { constraints: '>=1.40.0' } })],
      kubernetesVersion: 'v1.29.3+k3s1',
      want: {
        error:
          'Expected to find at least one version, but did not (details: all=1 -> after-prereleases-filter=1 -> after-kubernetes-version-check=0 -> after-kapp-controller-version-check=0)',
      },
    },
    {
      name: 'the kubernetes check passes a satisfied constraint',
      candidates: [pkg('1.0.0', { kubernetesVersionSelection: { constraints: '>=1.20.0' } }), pkg('0.9.0')],
      kubernetesVersion: 'v1.29.3-gke.100',
      want: '1.0.0',
    },
    {
      name: 'an unknown kubernetes version is an error when a Package needs it',
      candidates: [pkg('1.0.0', { kubernetesVersionSelection: { constraints: '>=1.20.0' } })],
      want: { error: /^Unable to get kubernetes version/ },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const got = selectVersion({
        refName: REF,
        candidates: c.candidates,
        constraints: c.constraints,
        prereleases: c.prereleases,
        annotations: c.annotations,
        kappControllerVersion: c.kappControllerVersion,
        kubernetesVersion: c.kubernetesVersion,
      });
      if (typeof c.want === 'string') {
        assert.equal(got.ok, true, got.ok ? '' : got.message);
        if (got.ok) {
          assert.equal(got.version, c.want);
          assert.equal(got.package.spec?.version, c.want);
        }
      } else {
        assert.equal(got.ok, false);
        if (!got.ok) {
          if (typeof c.want.error === 'string') assert.equal(got.message, c.want.error);
          else assert.match(got.message, c.want.error);
        }
      }
    });
  }

  it('returns the candidate object itself and does not modify the inputs', () => {
    const candidates = pkgs('1.0.0', '2.0.0');
    const before = structuredClone(candidates);
    const got = selectVersion({ refName: REF, candidates, prereleases: { identifiers: ['x'] } });
    assert.equal(got.ok && got.package, candidates[1]);
    assert.deepEqual(candidates, before);
  });
});

describe('parseConstraint', () => {
  const cases: { name: string; constraint: string; matches: string[]; rejects: string[] }[] = [
    {
      name: 'no operator means equal',
      constraint: '1.2.3',
      matches: ['1.2.3', '1.2.3+build'],
      rejects: ['1.2.4'],
    },
    { name: '== means equal', constraint: '==1.2.3', matches: ['1.2.3'], rejects: ['1.2.4'] },
    { name: '! means not equal', constraint: '!1.2.3', matches: ['1.2.4'], rejects: ['1.2.3'] },
    { name: '> is strict', constraint: '>1.2.3', matches: ['1.2.4'], rejects: ['1.2.3'] },
    { name: '<= includes the bound', constraint: '<=1.2.3', matches: ['1.2.3', '1.0.0'], rejects: ['1.2.4'] },
    {
      name: '|| needs no surrounding spaces',
      constraint: '1.0.0||2.0.0',
      matches: ['1.0.0', '2.0.0'],
      rejects: ['1.5.0'],
    },
    {
      name: 'a prerelease bound compares by precedence',
      constraint: '>=1.0.0-beta.2',
      matches: ['1.0.0-beta.10', '1.0.0'],
      rejects: ['1.0.0-beta.1', '1.0.0-alpha'],
    },
    { name: '<1.2.x is below the minor', constraint: '<1.2.x', matches: ['1.1.9'], rejects: ['1.2.0'] },
    {
      name: '>=1.x starts at the major',
      constraint: '>=1.x',
      matches: ['1.0.0', '5.0.0'],
      rejects: ['0.9.9'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const parsed = parseConstraint(c.constraint);
      assert.equal(parsed.ok, true);
      if (!parsed.ok) return;
      for (const v of c.matches) assert.equal(parsed.test(semver.parse(v)!), true, `${v} should match`);
      for (const v of c.rejects) assert.equal(parsed.test(semver.parse(v)!), false, `${v} should not match`);
    });
  }

  const invalid = [
    '',
    '   ',
    '>=',
    '1.0',
    'x',
    '*',
    '~1.2.3',
    '1.0.0 - 2.0.0',
    '>=1.0.0 || || <3.0.0',
    'x.1.0',
  ];
  for (const constraint of invalid) {
    it(`rejects ${JSON.stringify(constraint)}`, () => {
      assert.equal(parseConstraint(constraint).ok, false);
    });
  }

  it('treats a prerelease part containing x as a version, not a wildcard', () => {
    const parsed = parseConstraint('1.0.0-beta.x');
    assert.equal(parsed.ok && parsed.test(semver.parse('1.0.0-beta.x')!), true);
  });
});

describe('isExactPrereleaseConstraint', () => {
  const cases: [string, boolean][] = [
    ['1.0.0-rc.1', true],
    ['v1.0.0-rc.1', true],
    ['==1.0.0-rc.1', true],
    ['1.0.0', false],
    ['>=1.0.0-rc.1', false],
    ['1.0.0-rc.1 || 2.0.0', false],
  ];
  for (const [constraint, want] of cases) {
    it(`${constraint} is ${want ? '' : 'not '}an exact prerelease constraint`, () => {
      assert.equal(isExactPrereleaseConstraint(constraint), want);
    });
  }
});

describe('selectVersionForInstall', () => {
  it('uses refName, constraints and prereleases of the PackageInstall', () => {
    const got = selectVersionForInstall(
      {
        metadata: { name: 'i', namespace: 'default' },
        spec: { packageRef: { refName: REF, versionSelection: { constraints: '>=1.0.0', prereleases: {} } } },
      },
      pkgs('1.0.0', '1.1.0-rc.1'),
    );
    assert.deepEqual(got.ok && got.version, '1.1.0-rc.1');
  });

  it('requires a version selection', () => {
    const got = selectVersionForInstall({ spec: { packageRef: { refName: REF } } }, pkgs('1.0.0'));
    assert.equal(got.ok, false);
  });
});

describe('checkDowngrade', () => {
  const cases: {
    name: string;
    chosen: string;
    last: string | undefined;
    annotations?: Record<string, string>;
    ok: boolean;
  }[] = [
    { name: 'a first install is never a downgrade', chosen: '1.0.0', last: undefined, ok: true },
    { name: 'an empty last attempted version is never a downgrade', chosen: '1.0.0', last: '', ok: true },
    { name: 'the same version is fine', chosen: '1.0.0', last: '1.0.0', ok: true },
    { name: 'an upgrade is fine', chosen: '1.1.0', last: '1.0.0', ok: true },
    { name: 'a lower version is refused', chosen: '0.9.0', last: '1.0.0', ok: false },
    {
      name: 'a prerelease of the last version is lower and refused',
      chosen: '1.0.0-rc.1',
      last: '1.0.0',
      ok: false,
    },
    { name: 'the release after its prerelease is fine', chosen: '1.0.0', last: '1.0.0-rc.1', ok: true },
    {
      name: 'a lower version is allowed with the downgradable annotation',
      chosen: '0.9.0',
      last: '1.0.0',
      annotations: { [DOWNGRADABLE_ANNOTATION]: '' },
      ok: true,
    },
    {
      name: 'an unrelated annotation does not allow a downgrade',
      chosen: '0.9.0',
      last: '1.0.0',
      annotations: { 'packaging.carvel.dev/other': '' },
      ok: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = checkDowngrade(c.chosen, c.last, c.annotations);
      assert.equal(got.ok, c.ok);
    });
  }

  it("explains how to allow the downgrade, in upstream's exact words", () => {
    const got = checkDowngrade('0.9.0', '1.0.0', {});
    assert.equal(got.ok, false);
    if (got.ok) return;
    assert.equal(got.message, SEE_USEFUL_ERROR_MESSAGE);
    assert.equal(
      got.usefulErrorMessage,
      "Stopped installing matched version '0.9.0' since last attempted version '1.0.0' is higher.\n" +
        'hint: Add annotation packaging.carvel.dev/downgradable: "" to PackageInstall to proceed with downgrade',
    );
  });

  it('reports an unparsable last attempted version', () => {
    const got = checkDowngrade('1.0.0', 'garbage', undefined);
    assert.equal(got.ok, false);
    assert.match(got.ok ? '' : got.message, /last attempted version 'garbage'/);
  });
});
