// Relocated bundles, as `imgpkg copy` leaves them: every image a bundle lists
// in `.imgpkg/images.yml` is copied by digest into the bundle's own
// repository, while the file (and the Packages of a repository bundle) still
// name the original locations. This module holds the pure decisions:
//   - reading images.yml (an ImagesLock) and imgpkg's locations record (an
//     ImageLocations document, found in the image tagged
//     `sha256-<bundle digest hex>.image-locations.imgpkg`), once parsed;
//   - where each image lives after relocation (`<bundle-repo>@<digest>`) and
//     the rewritten images.yml;
//   - replacing the image references of a repository's Packages that
//     images.yml lists (by digest or by the `kbld.carvel.dev/id` annotation)
//     with the listed location, so installs fetch from the mirror.
// The registry lookups that pick between "relocated" and "original" are in
// bundle-relocation.ts.

import { stringify } from 'yaml';

import { ImageRefError, parseImageRef } from '../registry/image-ref.js';

export const IMAGES_LOCK_PATH = '.imgpkg/images.yml';
export const IMAGES_LOCK_API_VERSION = 'imgpkg.carvel.dev/v1alpha1';
export const LOCATIONS_FILE = 'image-locations.yml';
/** The annotation kbld records the reference an image was resolved from in. */
export const KBLD_ID_ANNOTATION = 'kbld.carvel.dev/id';

/** Bytes of `.imgpkg/images.yml` (real ones hold a few hundred entries of ~200 bytes). */
export const MAX_IMAGES_LOCK_BYTES = 1024 * 1024;
/** Entries of `.imgpkg/images.yml`; each may cost one registry request when no locations image exists. */
export const MAX_IMAGES_LOCK_ENTRIES = 2000;
/** Bytes of the locations image's `image-locations.yml`, and the disk its pull may use. */
export const MAX_LOCATIONS_BYTES = 1024 * 1024;

export interface ImagesLockEntry {
  /** The reference as images.yml writes it (always by digest). */
  image: string;
  /** `sha256:<hex>` of the image. */
  digest: string;
  annotations: Record<string, string>;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The one document of a file parsed by the caller (imgpkg reads the first). */
function firstMapping(documents: readonly unknown[], what: string): Parsed<Record<string, unknown>> {
  const document = documents[0];
  if (!isObject(document)) return { ok: false, error: `${what} is not a YAML mapping` };
  return { ok: true, value: document };
}

/**
 * The entries of an images.yml, from its parsed documents (the caller parses
 * it bounded, see repository-files.ts), or why it is unusable: another kind,
 * over `maxEntries`, an entry without an image or with a reference that has
 * no digest.
 */
export function imagesLockEntries(
  documents: readonly unknown[],
  maxEntries = MAX_IMAGES_LOCK_ENTRIES,
): Parsed<ImagesLockEntry[]> {
  const what = IMAGES_LOCK_PATH;
  const parsed = firstMapping(documents, what);
  if (!parsed.ok) return parsed;
  const lock = parsed.value;
  if (lock['apiVersion'] !== IMAGES_LOCK_API_VERSION || lock['kind'] !== 'ImagesLock') {
    return { ok: false, error: `${what} is not an ImagesLock of ${IMAGES_LOCK_API_VERSION}` };
  }
  const images = lock['images'] ?? [];
  if (!Array.isArray(images)) return { ok: false, error: `${what}: images is not a list` };
  if (images.length > maxEntries) {
    return { ok: false, error: `${what} lists ${images.length} images, over the limit of ${maxEntries}` };
  }
  const entries: ImagesLockEntry[] = [];
  for (const [index, item] of images.entries()) {
    const where = `${what}: images[${index}]`;
    if (!isObject(item) || typeof item['image'] !== 'string')
      return { ok: false, error: `${where}.image is missing` };
    const image = item['image'];
    let digest: string | undefined;
    try {
      digest = parseImageRef(image).digest;
    } catch (err) {
      const reason = err instanceof ImageRefError ? err.message : String(err);
      return { ok: false, error: `${where}.image is not a valid reference: ${reason}` };
    }
    if (digest === undefined)
      return { ok: false, error: `${where}.image ${JSON.stringify(image)} must be a digest reference` };
    const annotations: Record<string, string> = {};
    if (isObject(item['annotations'])) {
      for (const [key, value] of Object.entries(item['annotations'])) {
        if (typeof value === 'string') annotations[key] = value;
      }
    }
    entries.push({ image, digest, annotations });
  }
  return { ok: true, value: entries };
}

/** The images imgpkg's locations record lists (their original references), from its parsed documents. */
export function imageLocations(documents: readonly unknown[]): Parsed<string[]> {
  const what = `the locations image's ${LOCATIONS_FILE}`;
  const parsed = firstMapping(documents, what);
  if (!parsed.ok) return parsed;
  const doc = parsed.value;
  if (doc['apiVersion'] !== IMAGES_LOCK_API_VERSION || doc['kind'] !== 'ImageLocations') {
    return { ok: false, error: `${what} is not an ImageLocations document of ${IMAGES_LOCK_API_VERSION}` };
  }
  const images = doc['images'] ?? [];
  if (!Array.isArray(images)) return { ok: false, error: `${what}: images is not a list` };
  const out: string[] = [];
  for (const item of images) {
    if (isObject(item) && typeof item['image'] === 'string') out.push(item['image']);
  }
  return { ok: true, value: out };
}

/** `<registry>/<repository>` of a bundle reference: where `imgpkg copy` put every image of the bundle. */
export function bundleRepository(bundle: string): string {
  const ref = parseImageRef(bundle);
  return `${ref.registry}/${ref.repository}`;
}

/** The locations image of a bundle pulled as `pinned` (`<repo>@sha256:<hex>`). */
export function locationsImageRef(pinned: string): string {
  const ref = parseImageRef(pinned);
  if (ref.digest === undefined) throw new Error(`${pinned} is not a digest reference`);
  return `${ref.registry}/${ref.repository}:${ref.digest.replace(':', '-')}.image-locations.imgpkg`;
}

export const relocatedRef = (repository: string, entry: ImagesLockEntry): string =>
  `${repository}@${entry.digest}`;

/**
 * The digests of `entries` that the locations record does not list (so the
 * record cannot vouch for them). imgpkg writes one record per copied bundle
 * listing every image of its images.yml; a record that misses one is not
 * trusted for that bundle.
 */
export function unlistedInLocations(
  entries: readonly ImagesLockEntry[],
  locations: readonly string[],
): ImagesLockEntry[] {
  const listed = new Set<string>();
  for (const image of locations) {
    try {
      const digest = parseImageRef(image).digest;
      if (digest !== undefined) listed.add(digest);
    } catch {
      // an unparsable entry vouches for nothing
    }
  }
  return entries.filter((e) => !listed.has(e.digest));
}

/** images.yml with every image at `<repository>@<digest>`, annotations kept (as imgpkg pull writes it). */
export function renderRelocatedImagesLock(entries: readonly ImagesLockEntry[], repository: string): string {
  const images = entries.map((entry) => ({
    image: relocatedRef(repository, entry),
    ...(Object.keys(entry.annotations).length > 0 ? { annotations: entry.annotations } : {}),
  }));
  return `---\n${stringify({ apiVersion: IMAGES_LOCK_API_VERSION, kind: 'ImagesLock', images })}`;
}

/** Where each listed image is to be fetched from, by digest and by kbld id. */
export interface ImageResolution {
  byDigest: Map<string, string>;
  byId: Map<string, string>;
}

export function imageResolution(entries: readonly ImagesLockEntry[]): ImageResolution {
  const byDigest = new Map<string, string>();
  const byId = new Map<string, string>();
  for (const entry of entries) {
    if (!byDigest.has(entry.digest)) byDigest.set(entry.digest, entry.image);
    const id = entry.annotations[KBLD_ID_ANNOTATION];
    if (id !== undefined && !byId.has(id)) byId.set(id, entry.image);
  }
  return { byDigest, byId };
}

/** The location images.yml gives for `reference` (by kbld id, else by digest); undefined when unlisted. */
export function resolveImage(reference: string, resolution: ImageResolution): string | undefined {
  const byId = resolution.byId.get(reference);
  if (byId !== undefined) return byId;
  let digest: string | undefined;
  try {
    digest = parseImageRef(reference).digest;
  } catch {
    return undefined;
  }
  return digest === undefined ? undefined : resolution.byDigest.get(digest);
}

/**
 * Replaces, in place, the fetch image references of the Package documents
 * (`spec.template.spec.fetch[].imgpkgBundle.image` and `.image.url`) that
 * images.yml lists. Other documents and fields are left alone; a malformed
 * shape is skipped (validation reports it). Returns how many changed.
 */
export function resolvePackageImages(documents: readonly unknown[], resolution: ImageResolution): number {
  if (resolution.byDigest.size === 0 && resolution.byId.size === 0) return 0;
  let changed = 0;
  for (const doc of documents) {
    if (!isObject(doc) || doc['kind'] !== 'Package') continue;
    const spec = doc['spec'];
    const template = isObject(spec) ? spec['template'] : undefined;
    const appSpec = isObject(template) ? template['spec'] : undefined;
    const fetch = isObject(appSpec) ? appSpec['fetch'] : undefined;
    if (!Array.isArray(fetch)) continue;
    for (const stage of fetch) {
      if (!isObject(stage)) continue;
      for (const [kind, field] of [
        ['imgpkgBundle', 'image'],
        ['image', 'url'],
      ] as const) {
        const source = stage[kind];
        if (!isObject(source) || typeof source[field] !== 'string') continue;
        const location = resolveImage(source[field], resolution);
        if (location !== undefined && location !== source[field]) {
          source[field] = location;
          changed++;
        }
      }
    }
  }
  return changed;
}
