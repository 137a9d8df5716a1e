import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { Package, PackageMetadata } from './types.js';
import {
  type RepositoryObject,
  compareRevisions,
  packagesToPrune,
  planRepositorySync,
  parseRevision,
  MAX_REPOSITORY_OBJECTS,
  processRepositoryContent,
  resolveRepositoryConflict,
  validatePackage,
} from './repository-content.js';

const REPO = { namespace: 'kapp-controller-packaging-global', name: 'e2e-repo.test.carvel.dev' };
const REF_ANN = 'packaging.carvel.dev/package-repository-ref';

const bundleYaml = `
apiVersion: data.packaging.carvel.dev/v1alpha1
kind: PackageMetadata
metadata:
  name: pkg.test.carvel.dev
  namespace: somewhere-else
spec:
  displayName: Test package
---
apiVersion: data.packaging.carvel.dev/v1alpha1
kind: Package
metadata:
  name: pkg.test.carvel.dev.1.0.0
  namespace: somewhere-else
  resourceVersion: "123"
  labels: {team: a}
  annotations: {example.com/a: b}
spec:
  refName: pkg.test.carvel.dev
  version: 1.0.0
  template:
    spec:
      fetch:
      - imgpkgBundle: {image: k14stest/private-pkg@sha256:abc}
---
`;

const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as unknown);

function pkgDoc(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'data.packaging.carvel.dev/v1alpha1',
    kind: 'Package',
    metadata: { name: `pkg.test.carvel.dev.${version}` },
    spec: { refName: 'pkg.test.carvel.dev', version, ...extra },
  };
}

describe('processRepositoryContent', () => {
  it('keeps Packages and PackageMetadatas, drops metadata.namespace and adds the repository ref', () => {
    const got = processRepositoryContent(REPO, docs(bundleYaml));
    assert.equal(got.ok, true, got.ok ? '' : got.message);
    if (!got.ok) return;
    assert.deepEqual(got.objects, [
      {
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'PackageMetadata',
        metadata: {
          name: 'pkg.test.carvel.dev',
          annotations: { [REF_ANN]: `${REPO.namespace}/${REPO.name}` },
        },
        spec: { displayName: 'Test package' },
      },
      {
        apiVersion: 'data.packaging.carvel.dev/v1alpha1',
        kind: 'Package',
        metadata: {
          name: 'pkg.test.carvel.dev.1.0.0',
          labels: { team: 'a' },
          annotations: { 'example.com/a': 'b', [REF_ANN]: `${REPO.namespace}/${REPO.name}` },
        },
        spec: {
          refName: 'pkg.test.carvel.dev',
          version: '1.0.0',
          template: { spec: { fetch: [{ imgpkgBundle: { image: 'k14stest/private-pkg@sha256:abc' } }] } },
        },
      },
    ]);
    assert.equal(got.packages.length, 1);
    assert.equal(got.packageMetadatas.length, 1);
  });

  const errorCases: { name: string; documents: unknown[]; sources?: string[]; want: RegExp }[] = [
    {
      name: 'rejects a ConfigMap, naming it and what is allowed',
      documents: [pkgDoc('1.0.0'), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' } }],
      sources: ['packages/a.yml (document 1)', 'packages/cm.yml (document 2)'],
      want: /^Invalid package repository content: packages\/cm\.yml \(document 2\): v1\/ConfigMap "cm" is not allowed: only Package and PackageMetadata of data\.packaging\.carvel\.dev\/v1alpha1/,
    },
    {
      name: 'rejects a Package of another API version',
      documents: [{ ...pkgDoc('1.0.0'), apiVersion: 'data.packaging.carvel.dev/v1beta1' }],
      want: /data\.packaging\.carvel\.dev\/v1beta1\/Package "pkg\.test\.carvel\.dev\.1\.0\.0" is not allowed/,
    },
    {
      name: 'rejects a PackageInstall even though its group is packaging',
      documents: [
        { apiVersion: 'packaging.carvel.dev/v1alpha1', kind: 'PackageInstall', metadata: { name: 'x' } },
      ],
      want: /PackageInstall "x" is not allowed/,
    },
    {
      name: 'rejects a scalar document',
      documents: ['just a string'],
      want: /document 1: expected a Kubernetes object/,
    },
    {
      name: 'rejects a Package whose name is not refName.version',
      documents: [{ ...pkgDoc('1.0.0'), metadata: { name: 'wrong' } }],
      want: /is invalid: metadata\.name: Invalid value "wrong": must be <spec\.refName> \+ '\.' \+ <spec\.version>/,
    },
    {
      name: 'rejects a Package with a non-semver version',
      documents: [pkgDoc('v1.0')],
      want: /spec\.version: Invalid value "v1\.0": must be valid semver/,
    },
    {
      name: 'rejects a refName with fewer than three segments',
      documents: [
        {
          apiVersion: 'data.packaging.carvel.dev/v1alpha1',
          kind: 'Package',
          metadata: { name: 'pkg.dev.1.0.0' },
          spec: { refName: 'pkg.dev', version: '1.0.0' },
        },
      ],
      want: /spec\.refName: Invalid value "pkg\.dev": should be a domain with at least three segments/,
    },
    {
      name: 'rejects the same Package twice',
      documents: [pkgDoc('1.0.0'), pkgDoc('1.0.0')],
      want: /document 2: data\.packaging\.carvel\.dev\/v1alpha1\/Package "pkg\.test\.carvel\.dev\.1\.0\.0" duplicates document 1/,
    },
    {
      name: 'reports every problem, one per line',
      documents: [
        { apiVersion: 'v1', kind: 'Secret' },
        pkgDoc('1.0.0'),
        { apiVersion: 'v1', kind: 'Service' },
      ],
      want: /Secret is not allowed.*\n.*Service is not allowed/,
    },
  ];
  for (const c of errorCases) {
    it(c.name, () => {
      const got = processRepositoryContent(REPO, c.documents, c.sources);
      assert.equal(got.ok, false);
      assert.match(got.ok ? '' : got.message, c.want);
    });
  }

  it('skips empty documents', () => {
    const got = processRepositoryContent(REPO, [null, undefined, pkgDoc('1.0.0')]);
    assert.equal(got.ok && got.packages.length, 1);
  });

  it('refuses more Packages and PackageMetadatas than the per-repository cap, before validating any', () => {
    const many = Array.from({ length: MAX_REPOSITORY_OBJECTS + 1 }, (_, i) => pkgDoc(`1.0.${i}`));
    assert.deepEqual(processRepositoryContent(REPO, [null, ...many]), {
      ok: false,
      message: `Invalid package repository content: ${MAX_REPOSITORY_OBJECTS + 1} documents, more than the limit of ${MAX_REPOSITORY_OBJECTS} Packages and PackageMetadatas per repository`,
    });
    assert.equal(processRepositoryContent(REPO, many.slice(1)).ok, true);
  });

  it('refuses an object bigger than the per-object cap as JSON, naming its document', () => {
    const big = pkgDoc('1.0.0') as { spec: Record<string, unknown> };
    big.spec.releaseNotes = 'x'.repeat(2 * 1024 * 1024);
    const got = processRepositoryContent(REPO, [big], ['packages/big.yml (document 1)']);
    assert.match(
      got.ok ? '' : got.message,
      /^Invalid package repository content: packages\/big\.yml \(document 1\): data\.packaging\.carvel\.dev\/v1alpha1\/Package "[^"]+" is 2 MiB as JSON, more than the limit of 1 MiB per object$/,
    );
  });

  it('does not modify the documents', () => {
    const input = docs(bundleYaml);
    const before = structuredClone(input);
    processRepositoryContent(REPO, input);
    assert.deepEqual(input, before);
  });
});

describe('validatePackage', () => {
  it('accepts the seed Package', () => {
    assert.deepEqual(
      validatePackage({
        metadata: { name: 'simple-app.corp.com.1.0.0' },
        spec: { refName: 'simple-app.corp.com', version: '1.0.0' },
      }),
      [],
    );
  });
  it('rejects an unparsable kubernetesVersionSelection', () => {
    const errors = validatePackage({
      metadata: { name: 'simple-app.corp.com.1.0.0' },
      spec: {
        refName: 'simple-app.corp.com',
        version: '1.0.0',
        kubernetesVersionSelection: { constraints: '~1.2' },
      },
    });
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /^spec\.kubernetesVersionSelection\.constraints/);
  });
});

function owned(
  version: string,
  repo: string,
  annotations: Record<string, string> = {},
  spec: Record<string, unknown> = {},
): RepositoryObject {
  return {
    apiVersion: 'data.packaging.carvel.dev/v1alpha1',
    kind: 'Package',
    metadata: { name: `pkg.test.carvel.dev.${version}`, annotations: { [REF_ANN]: repo, ...annotations } },
    spec: { refName: 'pkg.test.carvel.dev', version, ...spec },
  };
}

describe('resolveRepositoryConflict', () => {
  const rev = (r: string) => ({ 'packaging.carvel.dev/revision': r });
  const cases: {
    name: string;
    existing: RepositoryObject;
    incoming: RepositoryObject;
    want: string | RegExp;
  }[] = [
    {
      name: 'the same repository simply updates its object',
      existing: owned('1.0.0', 'ns/a', {}, { releaseNotes: 'old' }),
      incoming: owned('1.0.0', 'ns/a', {}, { releaseNotes: 'new' }),
      want: 'apply',
    },
    {
      name: 'an object without repository ref is adopted',
      existing: { ...owned('1.0.0', 'x'), metadata: { name: 'pkg.test.carvel.dev.1.0.0' } },
      incoming: owned('1.0.0', 'ns/b', {}, { releaseNotes: 'different' }),
      want: 'apply',
    },
    {
      name: 'an identical object from another repository is fine and left alone',
      existing: owned('1.0.0', 'ns/a'),
      incoming: owned('1.0.0', 'ns/b'),
      want: 'keep-existing:identical',
    },
    {
      name: 'identical apart from kapp bookkeeping annotations is still identical',
      existing: owned('1.0.0', 'ns/a', { 'kapp.k14s.io/identity': 'v1;x' }),
      incoming: owned('1.0.0', 'ns/b'),
      want: 'keep-existing:identical',
    },
    {
      name: 'a higher incoming revision replaces the existing object',
      existing: owned('1.0.0', 'ns/a', rev('1.0'), { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('1.1'), { releaseNotes: 'b' }),
      want: 'replace:incoming-revision-higher',
    },
    {
      name: 'revisions compare as integers, not strings',
      existing: owned('1.0.0', 'ns/a', rev('1.9'), { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('1.10'), { releaseNotes: 'b' }),
      want: 'replace:incoming-revision-higher',
    },
    {
      name: 'a higher existing revision keeps the existing object',
      existing: owned('1.0.0', 'ns/a', rev('2'), { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('1.5'), { releaseNotes: 'b' }),
      want: 'keep-existing:existing-revision-higher',
    },
    {
      name: 'any revision beats a missing one',
      existing: owned('1.0.0', 'ns/a', {}, { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('0'), { releaseNotes: 'b' }),
      want: 'replace:incoming-revision-higher',
    },
    {
      name: 'the longer revision wins when the common part is equal',
      existing: owned('1.0.0', 'ns/a', rev('1.0.0'), { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('1.0'), { releaseNotes: 'b' }),
      want: 'keep-existing:existing-revision-higher',
    },
    {
      name: 'different objects without revisions conflict',
      existing: owned('1.0.0', 'ns/a', {}, { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', {}, { releaseNotes: 'b' }),
      want: /^Conflicting resources: Package\/pkg\.test\.carvel\.dev\.1\.0\.0 .*ns\/a.*ns\/b.*spec\.releaseNotes differs/,
    },
    {
      name: 'different objects at the same revision conflict',
      existing: owned('1.0.0', 'ns/a', rev('3'), { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('3'), { releaseNotes: 'b' }),
      want: /^Conflicting resources: .*higher packaging\.carvel\.dev\/revision/,
    },
    {
      name: 'a malformed revision conflicts and names the annotation value',
      existing: owned('1.0.0', 'ns/a', rev('1'), { releaseNotes: 'a' }),
      incoming: owned('1.0.0', 'ns/b', rev('1.x'), { releaseNotes: 'b' }),
      want: /^Conflicting resources: .*"1\.x" is not dot-separated integers/,
    },
    {
      name: 'a label difference is a difference',
      existing: {
        ...owned('1.0.0', 'ns/a'),
        metadata: { ...owned('1.0.0', 'ns/a').metadata, labels: { a: '1' } },
      },
      incoming: owned('1.0.0', 'ns/b'),
      want: /^Conflicting resources: .*metadata\.labels differ/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = resolveRepositoryConflict(c.existing, c.incoming);
      if (typeof c.want === 'string') {
        const summary =
          got.action === 'keep-existing' || got.action === 'replace'
            ? `${got.action}:${got.reason}`
            : got.action;
        assert.equal(summary, c.want, got.action === 'conflict' ? got.message : '');
      } else {
        assert.equal(got.action, 'conflict');
        assert.match(got.action === 'conflict' ? got.message : '', c.want);
      }
    });
  }
});

describe('parseRevision / compareRevisions', () => {
  const cases: { name: string; rev: string | undefined; want: number[] | undefined }[] = [
    { name: 'a missing revision is -1', rev: undefined, want: [-1] },
    { name: 'dot-separated integers parse', rev: '1.20.3', want: [1, 20, 3] },
    { name: 'a single integer parses', rev: '7', want: [7] },
    { name: 'letters do not parse', rev: '1.a', want: undefined },
    { name: 'an empty part does not parse', rev: '1..2', want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () =>
      assert.deepEqual(
        parseRevision(c.rev === undefined ? {} : { 'packaging.carvel.dev/revision': c.rev }),
        c.want,
      ),
    );
  }
  it('orders element-wise, then by length', () => {
    assert.ok(compareRevisions([1, 10], [1, 9]) > 0);
    assert.ok(compareRevisions([1], [1, 0]) < 0);
    assert.equal(compareRevisions([2, 1], [2, 1]), 0);
  });
});

describe('packagesToPrune', () => {
  const meta = (name: string, repo: string): PackageMetadata => ({
    kind: 'PackageMetadata',
    metadata: { name, annotations: { [REF_ANN]: repo } },
    spec: {},
  });
  const asPkg = (o: RepositoryObject): Package => o;
  const cases: {
    name: string;
    owned: (Package | PackageMetadata)[];
    incoming: (Package | PackageMetadata)[];
    useRepo?: boolean;
    want: string[];
  }[] = [
    {
      name: 'objects gone from the new content are pruned',
      owned: [
        asPkg(owned('1.0.0', 'ns/r')),
        asPkg(owned('2.0.0', 'ns/r')),
        meta('pkg.test.carvel.dev', 'ns/r'),
      ],
      incoming: [asPkg(owned('2.0.0', 'ns/r'))],
      want: ['Package/pkg.test.carvel.dev.1.0.0', 'PackageMetadata/pkg.test.carvel.dev'],
    },
    {
      name: 'nothing is pruned when everything is still there',
      owned: [asPkg(owned('1.0.0', 'ns/r'))],
      incoming: [asPkg(owned('1.0.0', 'ns/r'))],
      want: [],
    },
    {
      name: 'a Package and a PackageMetadata of the same name are different objects',
      owned: [meta('pkg.test.carvel.dev.1.0.0', 'ns/r')],
      incoming: [asPkg(owned('1.0.0', 'ns/r'))],
      want: ['PackageMetadata/pkg.test.carvel.dev.1.0.0'],
    },
    {
      name: 'list items without kind are matched by their shape',
      owned: [{ ...asPkg(owned('1.0.0', 'ns/r')), kind: undefined }],
      incoming: [asPkg(owned('1.0.0', 'ns/r'))],
      want: [],
    },
    {
      name: 'with the repository given, objects taken over by another repository are never pruned',
      owned: [asPkg(owned('1.0.0', 'ns/other')), asPkg(owned('2.0.0', 'ns/r'))],
      incoming: [],
      useRepo: true,
      want: ['Package/pkg.test.carvel.dev.2.0.0'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = packagesToPrune(
        c.owned,
        c.incoming,
        c.useRepo ? { namespace: 'ns', name: 'r' } : undefined,
      );
      assert.deepEqual(
        got.map((k) => `${k.kind}/${k.name}`),
        c.want,
      );
    });
  }
});

describe('planRepositorySync', () => {
  const ref = (repo: string) => ({ [REF_ANN]: `ns/${repo}` });
  const obj = (
    kind: 'Package' | 'PackageMetadata',
    name: string,
    spec: Record<string, unknown>,
    annotations: Record<string, string> = {},
  ) =>
    ({
      apiVersion: 'data.packaging.carvel.dev/v1alpha1',
      kind,
      metadata: { name, annotations },
      spec,
    }) as RepositoryObject & { metadata: { name: string } };
  const pkg = (version: string, notes: string, annotations: Record<string, string>) =>
    obj(
      'Package',
      `pkg.test.carvel.dev.${version}`,
      { refName: 'pkg.test.carvel.dev', version, releaseNotes: notes },
      annotations,
    );
  const A = { namespace: 'ns', name: 'a' };

  it('creates what is missing, leaves what is already as wanted, updates what differs, prunes what is gone', () => {
    const existing = [
      pkg('1.0.0', 'same', ref('a')),
      pkg('1.1.0', 'old', ref('a')),
      pkg('0.9.0', 'gone', ref('a')),
      obj('PackageMetadata', 'pkg.test.carvel.dev', {}, ref('a')),
    ];
    const incoming = [
      pkg('1.0.0', 'same', ref('a')),
      pkg('1.1.0', 'new', ref('a')),
      pkg('2.0.0', 'new', ref('a')),
    ];
    const plan = planRepositorySync(A, existing, incoming);
    assert.deepEqual(
      plan.create.map((o) => o.metadata?.name),
      ['pkg.test.carvel.dev.2.0.0'],
    );
    assert.deepEqual(
      plan.update.map((u) => [u.existing.spec?.['releaseNotes'], u.incoming.spec?.['releaseNotes']]),
      [['old', 'new']],
    );
    assert.equal(plan.unchanged, 1);
    assert.deepEqual(plan.prune, [
      { kind: 'Package', name: 'pkg.test.carvel.dev.0.9.0' },
      { kind: 'PackageMetadata', name: 'pkg.test.carvel.dev' },
    ]);
    assert.deepEqual(plan.conflicts, []);
  });

  it("leaves another repository's identical copy to it, and never prunes what another repository provides", () => {
    const plan = planRepositorySync(A, [pkg('1.0.0', 'same', ref('b'))], [pkg('1.0.0', 'same', ref('a'))]);
    assert.equal(plan.keptByOther, 1);
    assert.deepEqual([plan.create, plan.update, plan.prune, plan.conflicts], [[], [], [], []]);
  });

  it('takes over a copy of a lower revision, and reports a conflict at the same revision', () => {
    const newer = planRepositorySync(
      A,
      [pkg('1.0.0', 'theirs', ref('b'))],
      [pkg('1.0.0', 'ours', { ...ref('a'), 'packaging.carvel.dev/revision': '1.1' })],
    );
    assert.equal(newer.update.length, 1);
    const clash = planRepositorySync(A, [pkg('1.0.0', 'theirs', ref('b'))], [pkg('1.0.0', 'ours', ref('a'))]);
    assert.equal(clash.conflicts.length, 1);
    assert.match(clash.conflicts[0]!, /^Conflicting resources: Package\/pkg\.test\.carvel\.dev\.1\.0\.0 /);
  });

  it('writes a label or annotation change of its own copy', () => {
    const plan = planRepositorySync(
      A,
      [pkg('1.0.0', 'same', ref('a'))],
      [pkg('1.0.0', 'same', { ...ref('a'), 'example.com/x': 'y' })],
    );
    assert.equal(plan.update.length, 1);
  });
});
