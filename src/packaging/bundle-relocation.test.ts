import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';

import type { CredentialOptions, PullOptions, PullResult } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { relocateBundle, RelocationError, type RelocationRegistry } from './bundle-relocation.js';

const root = mkdtempSync(join(tmpdir(), 'bundle-relocation-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

const hex = (c: string) => c.repeat(64);
const D = { bundle: `sha256:${hex('b')}`, pkg: `sha256:${hex('1')}`, img: `sha256:${hex('2')}` };
const MIRROR = '127.0.0.1:5000/mirror/repo';
const PINNED = `${MIRROR}@${D.bundle}`;
const LOCATIONS = `${MIRROR}:sha256-${hex('b')}.image-locations.imgpkg`;
const ORIGINAL_PKG = `unreachable.invalid/pkgs/app@${D.pkg}`;
const ORIGINAL_IMG = `unreachable.invalid/images/app@${D.img}`;

const IMAGES_LOCK = `---
apiVersion: imgpkg.carvel.dev/v1alpha1
kind: ImagesLock
images:
- image: ${ORIGINAL_PKG}
  annotations:
    kbld.carvel.dev/id: unreachable.invalid/pkgs/app:1.0.0
- image: ${ORIGINAL_IMG}
`;
const locationsYaml = (...images: string[]) =>
  `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n${images.map((i) => `- image: ${i}\n  isBundle: false\n`).join('')}kind: ImageLocations\n`;

/** A registry that has the manifests in `present` and serves `locationsFile` as the locations image's content. */
class FakeRegistry implements RelocationRegistry {
  readonly requests: string[] = [];
  constructor(
    private readonly present: Set<string>,
    private readonly locationsFile?: Record<string, string>,
    private readonly failWith?: RegistryError,
  ) {}
  async hasManifest(image: string, _options: CredentialOptions): Promise<boolean> {
    this.requests.push(`manifest ${image}`);
    if (this.failWith) throw this.failWith;
    return this.present.has(image);
  }
  async pull(image: string, options: PullOptions): Promise<PullResult> {
    this.requests.push(`pull ${image}`);
    assert.equal(options.kind, 'image');
    assert.ok((options.maxDiskBytes ?? Infinity) <= 2 * 1024 * 1024, 'the locations pull is bounded');
    for (const [name, body] of Object.entries(this.locationsFile ?? {}))
      writeFileSync(join(options.targetDir, name), body);
    return {} as PullResult;
  }
}

function bundle(imagesLock: string | undefined): string {
  const dir = join(root, String(++dirs));
  mkdirSync(join(dir, '.imgpkg'), { recursive: true });
  if (imagesLock !== undefined) writeFileSync(join(dir, '.imgpkg', 'images.yml'), imagesLock);
  return dir;
}

const imagesOf = (dir: string) =>
  (
    parse(readFileSync(join(dir, '.imgpkg', 'images.yml'), 'utf8')) as { images: Array<{ image: string }> }
  ).images.map((i) => i.image);
const relocate = (registry: RelocationRegistry, directory: string) =>
  relocateBundle({ registry, directory, pinned: PINNED, credentials: {}, tmpDir: root, concurrency: 2 });

describe('relocateBundle', () => {
  const cases: Array<{
    name: string;
    present: string[];
    locations?: Record<string, string>;
    imagesLock?: string;
    stdout: string | undefined;
    images?: string[];
    requests: string[];
  }> = [
    {
      name: 'the locations image lists every image: each moves to <bundle-repo>@<digest> without looking them up',
      present: [LOCATIONS],
      locations: { 'image-locations.yml': locationsYaml(ORIGINAL_PKG, ORIGINAL_IMG) },
      stdout: `.imgpkg/images.yml: 2 images relocated to ${MIRROR} (as its locations image records)`,
      images: [`${MIRROR}@${D.pkg}`, `${MIRROR}@${D.img}`],
      requests: [`manifest ${LOCATIONS}`, `pull ${LOCATIONS}`],
    },
    {
      name: 'no locations image, every digest in the bundle repository: each moves there',
      present: [`${MIRROR}@${D.pkg}`, `${MIRROR}@${D.img}`],
      stdout: `.imgpkg/images.yml: 2 images relocated to ${MIRROR} (each found there by digest)`,
      images: [`${MIRROR}@${D.pkg}`, `${MIRROR}@${D.img}`],
      requests: [`manifest ${LOCATIONS}`, `manifest ${MIRROR}@${D.pkg}`, `manifest ${MIRROR}@${D.img}`],
    },
    {
      name: 'no locations image and one digest missing: the originals stay',
      present: [`${MIRROR}@${D.pkg}`],
      stdout: `.imgpkg/images.yml: kept the original image locations (${MIRROR}@${D.img} does not exist)`,
      images: [ORIGINAL_PKG, ORIGINAL_IMG],
      requests: [`manifest ${LOCATIONS}`, `manifest ${MIRROR}@${D.pkg}`, `manifest ${MIRROR}@${D.img}`],
    },
    {
      name: 'a locations record that misses an image is not trusted: the digests are looked up',
      present: [LOCATIONS, `${MIRROR}@${D.pkg}`, `${MIRROR}@${D.img}`],
      locations: { 'image-locations.yml': locationsYaml(ORIGINAL_PKG) },
      stdout: `.imgpkg/images.yml: 2 images relocated to ${MIRROR} (each found there by digest)`,
      images: [`${MIRROR}@${D.pkg}`, `${MIRROR}@${D.img}`],
      requests: [
        `manifest ${LOCATIONS}`,
        `pull ${LOCATIONS}`,
        `manifest ${MIRROR}@${D.pkg}`,
        `manifest ${MIRROR}@${D.img}`,
      ],
    },
    {
      name: 'images already in the bundle repository: nothing to look up',
      present: [],
      imagesLock: `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: ${MIRROR}@${D.pkg}\n`,
      stdout: `.imgpkg/images.yml: 1 image already in ${MIRROR}`,
      images: [`${MIRROR}@${D.pkg}`],
      requests: [],
    },
    {
      name: 'an empty images.yml: nothing to say, no request',
      present: [],
      imagesLock: '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n',
      stdout: undefined,
      requests: [],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const registry = new FakeRegistry(new Set(c.present), c.locations);
      const dir = bundle(c.imagesLock ?? IMAGES_LOCK);
      assert.equal(await relocate(registry, dir), c.stdout);
      if (c.images) assert.deepEqual(imagesOf(dir), c.images);
      // Every request goes to the bundle's registry, never to the original host.
      assert.deepEqual(registry.requests, c.requests);
      if (c.stdout?.includes('relocated')) {
        // The annotations stay with their image.
        const lock = parse(readFileSync(join(dir, '.imgpkg', 'images.yml'), 'utf8')) as {
          images: Array<{ annotations?: Record<string, string> }>;
        };
        assert.deepEqual(lock.images[0]?.annotations, {
          'kbld.carvel.dev/id': 'unreachable.invalid/pkgs/app:1.0.0',
        });
      }
    });
  }

  it('a bundle without .imgpkg/images.yml: nothing to do', async () => {
    const registry = new FakeRegistry(new Set());
    assert.equal(await relocate(registry, bundle(undefined)), undefined);
    assert.deepEqual(registry.requests, []);
  });

  const failures: Array<{
    name: string;
    imagesLock?: string;
    locations?: Record<string, string>;
    error: string;
  }> = [
    {
      name: 'an images.yml entry by tag',
      imagesLock:
        '---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: a.example.com/b:1\n',
      error: '.imgpkg/images.yml: images[0].image "a.example.com/b:1" must be a digest reference',
    },
    {
      name: 'an images.yml over the size limit',
      imagesLock: `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n${'#'.repeat(1024 * 1024)}\n`,
      error: '.imgpkg/images.yml is larger than the limit of 1048576 bytes',
    },
    {
      name: 'an images.yml that is an alias bomb (parsed in the bounded parser worker)',
      imagesLock:
        'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n' +
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n',
      error:
        'Invalid bundle content: .imgpkg/images.yml (document 1): Excessive alias count indicates a resource exhaustion attack (at most 100 alias expansions per document)',
    },
    {
      name: 'a locations image without image-locations.yml',
      locations: { 'other.yml': 'a: 1\n' },
      error: `the locations image ${LOCATIONS} has no image-locations.yml`,
    },
    {
      name: 'a locations image of another kind',
      locations: { 'image-locations.yml': 'apiVersion: v1\nkind: ConfigMap\n' },
      error: `the locations image ${LOCATIONS}: the locations image's image-locations.yml is not an ImageLocations document of imgpkg.carvel.dev/v1alpha1`,
    },
  ];
  for (const c of failures) {
    it(`fails clearly on ${c.name}, leaving images.yml as it was`, async () => {
      const registry = new FakeRegistry(new Set([LOCATIONS]), c.locations);
      const text = c.imagesLock ?? IMAGES_LOCK;
      const dir = bundle(text);
      await assert.rejects(relocate(registry, dir), (err: unknown) => {
        assert.ok(err instanceof RelocationError);
        assert.equal(err.message, c.error);
        return true;
      });
      assert.equal(readFileSync(join(dir, '.imgpkg', 'images.yml'), 'utf8'), text);
    });
  }

  it('a lookup that fails for another reason than absence fails the relocation (no silent fallback)', async () => {
    const error = new RegistryError({ code: 'SERVER_ERROR', reason: 'boom', status: 500 });
    const dir = bundle(IMAGES_LOCK);
    await assert.rejects(relocate(new FakeRegistry(new Set(), undefined, error), dir), /SERVER_ERROR: boom/);
    assert.equal(readFileSync(join(dir, '.imgpkg', 'images.yml'), 'utf8'), IMAGES_LOCK);
  });

  it('lookups stop at the first missing image or failed lookup', async () => {
    const many = `---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n${Array.from(
      { length: 50 },
      (_, i) => `- image: unreachable.invalid/app@sha256:${i.toString(16).padStart(64, '0')}\n`,
    ).join('')}`;
    const absent = new FakeRegistry(new Set());
    await relocate(absent, bundle(many));
    // The locations lookup, then one round of the 2 workers.
    assert.equal(absent.requests.length, 1 + 2);
    // The first image lookup fails, every other image exists.
    const requests: string[] = [];
    let lookups = 0;
    const failing: RelocationRegistry = {
      hasManifest: async (image) => {
        requests.push(image);
        if (image === LOCATIONS) return false;
        if (++lookups === 1) throw new RegistryError({ code: 'SERVER_ERROR', reason: 'boom', status: 500 });
        await new Promise((resolve) => setImmediate(resolve));
        return true;
      },
      pull: () => Promise.reject(new Error('no locations image here')),
    };
    await assert.rejects(relocate(failing, bundle(many)), /boom/);
    await new Promise((resolve) => setTimeout(resolve, 50)); // a worker left running would go on meanwhile
    // The locations lookup, then the 2 lookups already in flight when the first failed.
    assert.equal(requests.length, 1 + 2);
  });

  it('a link at .imgpkg/images.yml is not followed', async () => {
    const dir = bundle(undefined);
    const { symlinkSync } = await import('node:fs');
    writeFileSync(join(root, 'outside.yml'), IMAGES_LOCK);
    symlinkSync(join(root, 'outside.yml'), join(dir, '.imgpkg', 'images.yml'));
    const registry = new FakeRegistry(new Set([`${MIRROR}@${D.pkg}`, `${MIRROR}@${D.img}`]));
    assert.equal(await relocate(registry, dir), undefined);
    assert.equal(readFileSync(join(root, 'outside.yml'), 'utf8'), IMAGES_LOCK);
  });
});
