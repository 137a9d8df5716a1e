import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FetchStage, PackageRepository } from './types.js';
import {
  type FetchSecretWarningReason,
  isPlaceholderName,
  parseFetchSecretAnnotations,
  placeholderSecret,
  planFetchSecrets,
  repositoryFetchWithPlaceholder,
  repositoryPlaceholder,
  stalePlaceholders,
} from './fetch-secrets.js';

const ann = (i: number | string) => `ext.packaging.carvel.dev/fetch-${i}-secret-name`;

describe('parseFetchSecretAnnotations', () => {
  const cases: {
    name: string;
    annotations: Record<string, string>;
    fetchCount?: number;
    overrides: [number, string][];
    warnings: [string, FetchSecretWarningReason][];
  }[] = [
    {
      name: 'reads one annotation per fetch stage index',
      annotations: { [ann(0)]: 'a', [ann(1)]: 'b' },
      fetchCount: 2,
      overrides: [
        [0, 'a'],
        [1, 'b'],
      ],
      warnings: [],
    },
    {
      name: 'ignores unrelated annotations silently',
      annotations: { 'ext.packaging.carvel.dev/fetch-0-secret-namespace': 'x', 'example.com/a': 'b' },
      overrides: [],
      warnings: [],
    },
    {
      name: 'warns about a non-integer index',
      annotations: { [ann('a')]: 's', [ann('-1')]: 's', [ann('01')]: 's', [ann('')]: 's' },
      overrides: [],
      warnings: [
        [ann('-1'), 'InvalidFetchSecretIndex'],
        [ann(''), 'InvalidFetchSecretIndex'],
        [ann('01'), 'InvalidFetchSecretIndex'],
        [ann('a'), 'InvalidFetchSecretIndex'],
      ],
    },
    {
      name: 'warns about an empty secret name and drops it',
      annotations: { [ann(0)]: '', [ann(1)]: '  ' },
      overrides: [],
      warnings: [
        [ann(0), 'EmptyFetchSecretName'],
        [ann(1), 'EmptyFetchSecretName'],
      ],
    },
    {
      name: 'warns about an index beyond the fetch stages and drops it',
      annotations: { [ann(0)]: 'a', [ann(2)]: 'c' },
      fetchCount: 2,
      overrides: [[0, 'a']],
      warnings: [[ann(2), 'FetchSecretIndexOutOfRange']],
    },
    {
      name: 'keeps every index when the fetch count is unknown',
      annotations: { [ann(7)]: 'x' },
      overrides: [[7, 'x']],
      warnings: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = parseFetchSecretAnnotations(c.annotations, c.fetchCount);
      assert.deepEqual(
        [...got.overrides].sort(([a], [b]) => a - b),
        c.overrides,
      );
      assert.deepEqual(
        got.warnings.map((w) => [w.annotation, w.reason]),
        c.warnings,
      );
      for (const w of got.warnings)
        assert.ok(w.message.includes(w.annotation), 'the message names the annotation');
    });
  }
});

describe('planFetchSecrets', () => {
  const bundle = (secretRef?: { name: string }): FetchStage => ({
    imgpkgBundle: {
      image: 'registry.corp.com/packages/simple-app:1.0.0',
      ...(secretRef ? { secretRef } : {}),
    },
  });
  const image = (secretRef?: { name: string }): FetchStage => ({
    image: { url: 'registry.corp.com/img:1', ...(secretRef ? { secretRef } : {}) },
    path: 'img',
  });

  const cases: {
    name: string;
    fetch: FetchStage[];
    overrides?: [number, string][];
    secrets: (string | undefined)[];
    actions: string[];
    placeholders: string[];
    warnings?: FetchSecretWarningReason[];
  }[] = [
    {
      name: 'a package bundle at 0 and an image at 1 get -fetch-0 and -fetch-1',
      fetch: [bundle(), image()],
      secrets: ['inst-fetch-0', 'inst-fetch-1'],
      actions: ['placeholder', 'placeholder'],
      placeholders: ['inst-fetch-0', 'inst-fetch-1'],
    },
    {
      name: 'a stage with its own secretRef keeps it and gets no placeholder',
      fetch: [bundle({ name: 'mine' }), image()],
      secrets: ['mine', 'inst-fetch-1'],
      actions: ['keep', 'placeholder'],
      placeholders: ['inst-fetch-1'],
    },
    {
      name: 'the annotation wins over the placeholder, and no placeholder is made for that stage',
      fetch: [bundle(), image()],
      overrides: [[0, 'simple-app-secret']],
      secrets: ['simple-app-secret', 'inst-fetch-1'],
      actions: ['override', 'placeholder'],
      placeholders: ['inst-fetch-1'],
    },
    {
      name: "the annotation wins over the Package's own secretRef",
      fetch: [image({ name: 'from-package' })],
      overrides: [[0, 'from-annotation']],
      secrets: ['from-annotation'],
      actions: ['override'],
      placeholders: [],
    },
    {
      name: 'the annotation sets the secret of http and git stages, which get no placeholder otherwise',
      fetch: [
        { http: { url: 'https://x/y.tgz' } },
        { git: { url: 'https://github.com/a/b', ref: 'main' } },
        { http: { url: 'https://z' } },
      ],
      overrides: [
        [0, 'http-creds'],
        [1, 'git-creds'],
      ],
      secrets: ['http-creds', 'git-creds', undefined],
      actions: ['override', 'override', 'none'],
      placeholders: [],
    },
    {
      name: 'the annotation sets helmChart.repository.secretRef',
      fetch: [{ helmChart: { name: 'c', version: '1', repository: { url: 'https://charts' } } }],
      overrides: [[0, 'helm-creds']],
      secrets: ['helm-creds'],
      actions: ['override'],
      placeholders: [],
    },
    {
      name: 'a helmChart without repository cannot take the annotation and says so',
      fetch: [{ helmChart: { name: 'c', version: '1' } }],
      overrides: [[0, 'helm-creds']],
      secrets: [undefined],
      actions: ['none'],
      placeholders: [],
      warnings: ['FetchSecretNotApplicable'],
    },
    {
      name: 'an inline stage cannot take the annotation and says so',
      fetch: [{ inline: { paths: { 'a.yml': 'x: 1' } } }, bundle()],
      overrides: [[0, 'creds']],
      secrets: [undefined, 'inst-fetch-1'],
      actions: ['none', 'placeholder'],
      placeholders: ['inst-fetch-1'],
      warnings: ['FetchSecretNotApplicable'],
    },
    {
      name: 'an override for a stage that does not exist is reported',
      fetch: [bundle()],
      overrides: [[3, 'creds']],
      secrets: ['inst-fetch-0'],
      actions: ['placeholder'],
      placeholders: ['inst-fetch-0'],
      warnings: ['FetchSecretIndexOutOfRange'],
    },
    {
      name: 'no fetch stages means nothing to do',
      fetch: [],
      secrets: [],
      actions: [],
      placeholders: [],
    },
  ];

  const secretOf = (s: FetchStage): string | undefined =>
    s.image?.secretRef?.name ??
    s.imgpkgBundle?.secretRef?.name ??
    s.http?.secretRef?.name ??
    s.git?.secretRef?.name ??
    s.helmChart?.repository?.secretRef?.name;

  for (const c of cases) {
    it(c.name, () => {
      const input = structuredClone(c.fetch);
      const plan = planFetchSecrets('inst', input, new Map(c.overrides ?? []));
      assert.deepEqual(plan.fetch.map(secretOf), c.secrets);
      assert.deepEqual(
        plan.decisions.map((d) => d.action),
        c.actions,
      );
      assert.deepEqual(plan.placeholders, c.placeholders);
      assert.deepEqual(
        plan.warnings.map((w) => w.reason),
        c.warnings ?? [],
      );
      assert.deepEqual(input, c.fetch, 'the input stages are not modified');
    });
  }

  it('keeps the other fields of a stage', () => {
    const plan = planFetchSecrets('inst', [image()], new Map());
    assert.deepEqual(plan.fetch[0], {
      image: { url: 'registry.corp.com/img:1', secretRef: { name: 'inst-fetch-0' } },
      path: 'img',
    });
  });

  it('works end to end with the seed PackageInstall annotation', () => {
    const fetch = [bundle()];
    const parsed = parseFetchSecretAnnotations({ [ann(0)]: 'simple-app-secret' }, fetch.length);
    const plan = planFetchSecrets('simple-app-with-secret', fetch, parsed.overrides);
    assert.deepEqual(plan.fetch[0]?.imgpkgBundle?.secretRef, { name: 'simple-app-secret' });
    assert.deepEqual(plan.placeholders, []);
  });
});

describe('placeholderSecret', () => {
  it('is an empty dockerconfigjson Secret for secretgen-controller, owned (not controlled) by its owner', () => {
    const owner = {
      apiVersion: 'packaging.carvel.dev/v1alpha1',
      kind: 'PackageInstall',
      name: 'pkg-demo',
      uid: 'u-1',
    };
    const secret = placeholderSecret('pkg-demo-fetch-0', 'default', owner);
    assert.deepEqual(secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'pkg-demo-fetch-0',
        namespace: 'default',
        annotations: { 'secretgen.carvel.dev/image-pull-secret': '' },
        ownerReferences: [owner],
      },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': 'eyJhdXRocyI6e319' },
    });
    assert.equal(Buffer.from(secret.data['.dockerconfigjson'] ?? '', 'base64').toString(), '{"auths":{}}');
  });
});

describe('stalePlaceholders', () => {
  const cases: { name: string; owner?: string; existing: string[]; wanted: string[]; want: string[] }[] = [
    {
      name: 'placeholders of stages that no longer exist are removed',
      existing: ['inst-fetch-0', 'inst-fetch-1', 'inst-fetch-2'],
      wanted: ['inst-fetch-0'],
      want: ['inst-fetch-1', 'inst-fetch-2'],
    },
    {
      name: 'wanted placeholders stay',
      existing: ['inst-fetch-0'],
      wanted: ['inst-fetch-0'],
      want: [],
    },
    {
      name: 'secrets not shaped like a placeholder are never removed',
      existing: ['inst-values', 'inst-fetch-x', 'inst-fetch-01', 'other-fetch-0', 'inst-fetch-0-extra'],
      wanted: [],
      want: [],
    },
    {
      name: 'an owner name with dots is matched literally',
      owner: 'a.b',
      existing: ['a.b-fetch-0', 'aXb-fetch-0'],
      wanted: [],
      want: ['a.b-fetch-0'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(stalePlaceholders(c.owner ?? 'inst', c.existing, c.wanted), c.want);
    });
  }

  it('recognises placeholder names', () => {
    assert.equal(isPlaceholderName('a.b', 'a.b-fetch-0'), true);
    assert.equal(isPlaceholderName('a.b', 'aXb-fetch-0'), false);
  });
});

describe('repositoryPlaceholder', () => {
  const repo = (fetch: NonNullable<PackageRepository['spec']>['fetch']): PackageRepository => ({
    metadata: { name: 'e2e-repo.test.carvel.dev', namespace: 'kapp-controller-packaging-global' },
    spec: { fetch },
  });
  const cases: { name: string; repo: PackageRepository; want: string | undefined }[] = [
    {
      name: 'an imgpkgBundle without secretRef gets <name>-fetch-0',
      repo: repo({ imgpkgBundle: { image: 'k14stest/private-repo@sha256:ddd' } }),
      want: 'e2e-repo.test.carvel.dev-fetch-0',
    },
    {
      name: 'an image without secretRef gets <name>-fetch-0',
      repo: repo({ image: { url: 'k14stest/private-repo:1' } }),
      want: 'e2e-repo.test.carvel.dev-fetch-0',
    },
    {
      name: 'an imgpkgBundle with secretRef gets none',
      repo: repo({
        imgpkgBundle: { image: 'k8slt/corp-com-pkg-repo:1.0.0', secretRef: { name: 'my-registry-creds' } },
      }),
      want: undefined,
    },
    { name: 'an http fetch gets none', repo: repo({ http: { url: 'https://x' } }), want: undefined },
    { name: 'a git fetch gets none', repo: repo({ git: { url: 'https://x' } }), want: undefined },
    { name: 'no fetch gets none', repo: repo(undefined), want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(repositoryPlaceholder(c.repo), c.want));
  }

  it('sets the placeholder as the fetch secretRef without touching the input', () => {
    const r = repo({ imgpkgBundle: { image: 'k14stest/private-repo@sha256:ddd' } });
    const before = structuredClone(r);
    assert.deepEqual(repositoryFetchWithPlaceholder(r), {
      imgpkgBundle: {
        image: 'k14stest/private-repo@sha256:ddd',
        secretRef: { name: 'e2e-repo.test.carvel.dev-fetch-0' },
      },
    });
    assert.deepEqual(r, before);
  });
});
