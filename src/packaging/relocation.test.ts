import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';

import {
  bundleRepository,
  imageResolution,
  locationsImageRef,
  imageLocations,
  imagesLockEntries,
  renderRelocatedImagesLock,
  resolveImage,
  resolvePackageImages,
  unlistedInLocations,
  type ImagesLockEntry,
} from './relocation.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
/** The documents of a file, as the bounded parser gives them. */
const documents = (text: string): unknown[] => parseAllDocuments(text).map((d) => d.toJS() as unknown);
const parseImagesLock = (text: string, maxEntries?: number) => imagesLockEntries(documents(text), maxEntries);
const parseImageLocations = (text: string) => imageLocations(documents(text));
const lock = (images: string) =>
  `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n${images}`;

describe('imagesLockEntries', () => {
  const cases: Array<{ name: string; text: string; want: ImagesLockEntry[] | string }> = [
    {
      name: 'entries with digests and kbld annotations (non-string annotations dropped)',
      text: lock(
        `- image: original.example.com/pkgs/app@${D1}\n  annotations:\n    kbld.carvel.dev/id: original.example.com/pkgs/app:1.0.0\n    n: 3\n- image: other.example.com/x@${D2}\n`,
      ),
      want: [
        {
          image: `original.example.com/pkgs/app@${D1}`,
          digest: D1,
          annotations: { 'kbld.carvel.dev/id': 'original.example.com/pkgs/app:1.0.0' },
        },
        { image: `other.example.com/x@${D2}`, digest: D2, annotations: {} },
      ],
    },
    {
      name: 'no images key',
      text: '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n',
      want: [],
    },
    {
      name: 'a tag reference',
      text: lock('- image: original.example.com/pkgs/app:1.0.0\n'),
      want: '.imgpkg/images.yml: images[0].image "original.example.com/pkgs/app:1.0.0" must be a digest reference',
    },
    {
      name: 'another kind',
      text: '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImageLocations\nimages: []\n',
      want: '.imgpkg/images.yml is not an ImagesLock of imgpkg.carvel.dev/v1alpha1',
    },
    {
      name: 'an entry without image',
      text: lock('- annotations: {}\n'),
      want: '.imgpkg/images.yml: images[0].image is missing',
    },
    {
      name: 'images not a list',
      text: '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: {a: 1}\n',
      want: '.imgpkg/images.yml: images is not a list',
    },
    { name: 'not a mapping', text: '- a\n', want: '.imgpkg/images.yml is not a YAML mapping' },
    {
      name: 'an invalid reference',
      text: lock('- image: a.example.com/x@sha256:abc\n'),
      want: '.imgpkg/images.yml: images[0].image is not a valid reference: ',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = parseImagesLock(c.text);
      if (typeof c.want === 'string') {
        assert.equal(got.ok, false);
        assert.ok(!got.ok && got.error.startsWith(c.want), !got.ok ? got.error : '');
      } else {
        assert.deepEqual(got, { ok: true, value: c.want });
      }
    });
  }

  it('refuses more entries than the limit', () => {
    const three = lock(
      `- image: a.example.com/a@${D1}\n- image: a.example.com/a@${D2}\n- image: a.example.com/a@${D3}\n`,
    );
    assert.deepEqual(parseImagesLock(three, 2), {
      ok: false,
      error: '.imgpkg/images.yml lists 3 images, over the limit of 2',
    });
    assert.equal(parseImagesLock(three, 3).ok, true);
  });
});

describe('imageLocations', () => {
  const cases: Array<{ name: string; text: string; want: string[] | string }> = [
    {
      name: 'the document imgpkg copy writes',
      text: `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- image: original.example.com/pkgs/app@${D1}\n  isBundle: true\n- image: original.example.com/img@${D2}\n  isBundle: false\nkind: ImageLocations\n`,
      want: [`original.example.com/pkgs/app@${D1}`, `original.example.com/img@${D2}`],
    },
    {
      name: 'another kind',
      text: '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n',
      want: "the locations image's image-locations.yml is not an ImageLocations document of imgpkg.carvel.dev/v1alpha1",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = parseImageLocations(c.text);
      assert.deepEqual(
        got,
        typeof c.want === 'string' ? { ok: false, error: c.want } : { ok: true, value: c.want },
      );
    });
  }
});

describe('references', () => {
  const cases: Array<{ name: string; fn: () => string; want: string }> = [
    {
      name: 'bundle repository of a pinned reference',
      fn: () => bundleRepository(`127.0.0.1:5000/mirror/repo@${D1}`),
      want: '127.0.0.1:5000/mirror/repo',
    },
    {
      name: 'bundle repository of a Docker Hub short name',
      fn: () => bundleRepository('k14stest/repo:1.0.0'),
      want: 'index.docker.io/k14stest/repo',
    },
    {
      name: 'locations image tag: sha256-<hex>.image-locations.imgpkg in the bundle repository',
      fn: () => locationsImageRef(`127.0.0.1:5000/mirror/repo@${D1}`),
      want: `127.0.0.1:5000/mirror/repo:sha256-${'1'.repeat(64)}.image-locations.imgpkg`,
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(c.fn(), c.want));

  it('a locations image of a reference without digest is refused', () => {
    assert.throws(() => locationsImageRef('127.0.0.1:5000/mirror/repo:1.0.0'), /is not a digest reference/);
  });
});

const entry = (image: string, digest: string, id?: string): ImagesLockEntry => ({
  image,
  digest,
  annotations: id ? { 'kbld.carvel.dev/id': id } : {},
});

describe('unlistedInLocations', () => {
  const entries = [entry(`a.example.com/a@${D1}`, D1), entry(`b.example.com/b@${D2}`, D2)];
  const cases: Array<{ name: string; locations: string[]; want: string[] }> = [
    { name: 'all listed', locations: [`a.example.com/a@${D1}`, `b.example.com/b@${D2}`], want: [] },
    { name: 'matched by digest, whatever the name', locations: [`x/y@${D1}`, `z@${D2}`], want: [] },
    { name: 'one missing', locations: [`a.example.com/a@${D1}`, 'not a ref', `c/c@${D3}`], want: [D2] },
    { name: 'an empty record vouches for nothing', locations: [], want: [D1, D2] },
  ];
  for (const c of cases) {
    it(c.name, () =>
      assert.deepEqual(
        unlistedInLocations(entries, c.locations).map((e) => e.digest),
        c.want,
      ),
    );
  }
});

describe('renderRelocatedImagesLock', () => {
  it('points every image at <repository>@<digest> and keeps the annotations', () => {
    const text = renderRelocatedImagesLock(
      [
        entry(`original.example.com/app@${D1}`, D1, 'original.example.com/app:1.0.0'),
        entry(`o.example.com/b@${D2}`, D2),
      ],
      '127.0.0.1:5000/mirror/repo',
    );
    assert.ok(text.startsWith('---\n'));
    assert.deepEqual(parse(text), {
      apiVersion: 'imgpkg.carvel.dev/v1alpha1',
      kind: 'ImagesLock',
      images: [
        {
          image: `127.0.0.1:5000/mirror/repo@${D1}`,
          annotations: { 'kbld.carvel.dev/id': 'original.example.com/app:1.0.0' },
        },
        { image: `127.0.0.1:5000/mirror/repo@${D2}` },
      ],
    });
    // What it renders parses back to the same entries.
    const reparsed = parseImagesLock(text);
    assert.ok(reparsed.ok);
    assert.deepEqual(
      reparsed.value.map((e: ImagesLockEntry) => e.digest),
      [D1, D2],
    );
  });
});

describe('resolving Package image references', () => {
  const MIRROR = '127.0.0.1:5000/mirror/repo';
  const resolution = imageResolution([
    entry(`${MIRROR}@${D1}`, D1, 'original.example.com/pkgs/app:1.0.0'),
    entry(`${MIRROR}@${D2}`, D2),
  ]);
  const cases: Array<{ name: string; reference: string; want: string | undefined }> = [
    { name: 'by kbld id (a tag)', reference: 'original.example.com/pkgs/app:1.0.0', want: `${MIRROR}@${D1}` },
    {
      name: 'by digest, original host',
      reference: `original.example.com/pkgs/app@${D1}`,
      want: `${MIRROR}@${D1}`,
    },
    {
      name: 'by digest, tag and digest',
      reference: `unreachable.invalid/b:v1@${D2}`,
      want: `${MIRROR}@${D2}`,
    },
    { name: 'an unlisted digest', reference: `original.example.com/pkgs/app@${D3}`, want: undefined },
    { name: 'an unlisted tag', reference: 'original.example.com/pkgs/app:2.0.0', want: undefined },
    { name: 'not a reference', reference: 'http://nope', want: undefined },
  ];
  for (const c of cases) it(c.name, () => assert.equal(resolveImage(c.reference, resolution), c.want));

  it('rewrites imgpkgBundle.image and image.url of Package fetch stages, and nothing else', () => {
    const pkg = {
      apiVersion: 'data.packaging.carvel.dev/v1alpha1',
      kind: 'Package',
      metadata: {
        name: 'app.example.com.1.0.0',
        annotations: { image: `original.example.com/pkgs/app@${D1}` },
      },
      spec: {
        refName: 'app.example.com',
        version: '1.0.0',
        template: {
          spec: {
            fetch: [
              { imgpkgBundle: { image: `original.example.com/pkgs/app@${D1}` } },
              { image: { url: 'original.example.com/pkgs/app:1.0.0', subPath: 'x' } },
              { image: { url: `original.example.com/other@${D3}` } },
              { http: { url: `original.example.com/pkgs/app@${D1}` } },
              'not a stage',
              { imgpkgBundle: { image: 42 } },
            ],
          },
        },
      },
    };
    const metadata = {
      kind: 'PackageMetadata',
      metadata: { name: 'app.example.com' },
      spec: {
        template: { spec: { fetch: [{ imgpkgBundle: { image: `original.example.com/pkgs/app@${D1}` } }] } },
      },
    };
    const documents: unknown[] = [
      pkg,
      metadata,
      null,
      'text',
      { kind: 'Package', spec: { template: { spec: { fetch: {} } } } },
    ];
    const before = JSON.parse(JSON.stringify(metadata)) as unknown;
    assert.equal(resolvePackageImages(documents, resolution), 2);
    assert.deepEqual(pkg.spec.template.spec.fetch, [
      { imgpkgBundle: { image: `${MIRROR}@${D1}` } },
      { image: { url: `${MIRROR}@${D1}`, subPath: 'x' } },
      { image: { url: `original.example.com/other@${D3}` } },
      { http: { url: `original.example.com/pkgs/app@${D1}` } },
      'not a stage',
      { imgpkgBundle: { image: 42 } },
    ]);
    assert.deepEqual(pkg.metadata.annotations, { image: `original.example.com/pkgs/app@${D1}` });
    assert.deepEqual(metadata, before);
    // Idempotent: a second pass changes nothing.
    assert.equal(resolvePackageImages(documents, resolution), 0);
  });

  it('an empty images.yml changes nothing', () => {
    const doc = {
      kind: 'Package',
      spec: { template: { spec: { fetch: [{ imgpkgBundle: { image: `a/b@${D1}` } }] } } },
    };
    assert.equal(resolvePackageImages([doc], imageResolution([])), 0);
  });
});
