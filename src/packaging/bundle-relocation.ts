// After a bundle pull: rewrites its `.imgpkg/images.yml` to where
// `imgpkg copy` put the images, the way `imgpkg pull` does.
//   1. The locations image `<bundle-repo>:sha256-<hex>.image-locations.imgpkg`
//      (imgpkg writes it on copy) lists every image: each moves to
//      `<bundle-repo>@<digest>` without further requests.
//   2. Without it, each image is looked up as `<bundle-repo>@<digest>`; when
//      all exist, each moves there.
//   3. Otherwise the original references stay.
// Every request goes to the bundle's own registry, with the credentials the
// bundle was pulled with; the original hosts are never contacted (an
// air-gapped cluster may not even resolve them).

import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CredentialOptions, PullOptions, PullResult } from '../registry/client.js';
import { parseYamlFile, readBounded } from './repository-files.js';
import {
  bundleRepository,
  IMAGES_LOCK_PATH,
  locationsImageRef,
  LOCATIONS_FILE,
  MAX_IMAGES_LOCK_BYTES,
  MAX_LOCATIONS_BYTES,
  imageLocations,
  imagesLockEntries,
  relocatedRef,
  renderRelocatedImagesLock,
  unlistedInLocations,
  type ImagesLockEntry,
} from './relocation.js';

/** The part of the registry client relocation needs. */
export interface RelocationRegistry {
  pull(image: string, options: PullOptions): Promise<PullResult>;
  hasManifest(image: string, options: CredentialOptions): Promise<boolean>;
}

/** A bundle's images.yml or locations record cannot be used; the fetch fails with this message. */
export class RelocationError extends Error {
  override readonly name = 'RelocationError';
}

export interface RelocateBundleOptions {
  registry: RelocationRegistry;
  /** The extracted bundle. */
  directory: string;
  /** The bundle as pulled, by digest (`<registry>/<repo>@sha256:…`). */
  pinned: string;
  /** The credentials of the bundle's pull (only ever used against the bundle's registry). */
  credentials: Pick<CredentialOptions, 'auths' | 'credential'>;
  signal?: AbortSignal;
  /** Parent of the locations image's temporary directory (default: the OS temp dir). */
  tmpDir?: string;
  /** Lookups in flight at once when there is no locations image. */
  concurrency?: number;
  /** The fetching namespace: shares the one YAML parser fairly. */
  owner?: string;
}

/** Whether a regular file exists at `path` (links are not followed). */
async function regularFile(path: string): Promise<{ size: number } | undefined> {
  const found = await lstat(path).catch(() => undefined);
  return found?.isFile() ? { size: found.size } : undefined;
}

/** What a bundle's files are called when they cannot be used. */
const INVALID_BUNDLE = 'Invalid bundle content';

/** Reads a regular file of at most `limit` bytes and parses it in the bounded YAML parser. */
async function readYaml(
  path: string,
  label: string,
  limit: number,
  owner: string | undefined,
): Promise<{ ok: true; documents: unknown[] } | { ok: false; error: string }> {
  const tooLarge = { ok: false as const, error: `${label} is larger than the limit of ${limit} bytes` };
  const file = await regularFile(path);
  if (!file) return { ok: false, error: `${label} is missing` };
  if (file.size > limit) return tooLarge;
  const text = await readBounded(path, limit);
  if (text === undefined) return tooLarge;
  const parsed = await parseYamlFile(label, text, {
    invalid: INVALID_BUNDLE,
    ...(owner !== undefined ? { owner } : {}),
  });
  return parsed.ok ? parsed : { ok: false, error: parsed.message };
}

/**
 * The entries of `<directory>/.imgpkg/images.yml`; undefined without one.
 * Throws RelocationError when it is unusable. `owner` (the fetching
 * namespace) shares the one YAML parser fairly.
 */
export async function readImagesLock(
  directory: string,
  owner?: string,
): Promise<ImagesLockEntry[] | undefined> {
  const path = join(directory, IMAGES_LOCK_PATH);
  if (!(await regularFile(path))) return undefined;
  const read = await readYaml(path, IMAGES_LOCK_PATH, MAX_IMAGES_LOCK_BYTES, owner);
  if (!read.ok) throw new RelocationError(read.error);
  const entries = imagesLockEntries(read.documents);
  if (!entries.ok) throw new RelocationError(entries.error);
  return entries.value;
}

/** The images the locations record lists; undefined when the bundle has no locations image. */
async function fetchLocations(options: RelocateBundleOptions): Promise<string[] | undefined> {
  const reference = locationsImageRef(options.pinned);
  const request = { ...options.credentials, ...(options.signal ? { signal: options.signal } : {}) };
  if (!(await options.registry.hasManifest(reference, request))) return undefined;
  const staging = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'regcred-locations-'));
  try {
    // Room for the compressed blob beside the extracted file, both within the record's cap.
    await options.registry.pull(reference, {
      ...request,
      kind: 'image',
      targetDir: staging,
      maxDiskBytes: 2 * MAX_LOCATIONS_BYTES,
    });
    const path = join(staging, LOCATIONS_FILE);
    if (!(await regularFile(path)))
      throw new RelocationError(`the locations image ${reference} has no ${LOCATIONS_FILE}`);
    const read = await readYaml(path, LOCATIONS_FILE, MAX_LOCATIONS_BYTES, options.owner);
    const parsed = read.ok ? imageLocations(read.documents) : read;
    if (!parsed.ok) throw new RelocationError(`the locations image ${reference}: ${parsed.error}`);
    return parsed.value;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The first entry not found as `<repository>@<digest>`, or undefined when all are there. */
async function firstMissing(
  entries: readonly ImagesLockEntry[],
  repository: string,
  options: RelocateBundleOptions,
): Promise<ImagesLockEntry | undefined> {
  const request = { ...options.credentials, ...(options.signal ? { signal: options.signal } : {}) };
  let next = 0;
  let missing: ImagesLockEntry | undefined;
  let failed = false;
  const worker = async () => {
    // Stops at the first missing image or failed lookup: no request after the answer is known.
    while (missing === undefined && !failed && next < entries.length) {
      const entry = entries[next++]!;
      try {
        if (!(await options.registry.hasManifest(relocatedRef(repository, entry), request))) {
          missing ??= entry;
        }
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency ?? 4, entries.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return missing;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Rewrites the pulled bundle's images.yml to the relocated locations when the
 * bundle was copied with its images; returns a line for the fetch's stdout
 * (undefined when the bundle lists no image). Throws RelocationError for an
 * unusable images.yml or locations record, RegistryError when a lookup fails
 * for another reason than absence.
 */
export async function relocateBundle(options: RelocateBundleOptions): Promise<string | undefined> {
  const entries = await readImagesLock(options.directory, options.owner);
  if (!entries || entries.length === 0) return undefined;
  const repository = bundleRepository(options.pinned);
  if (entries.every((entry) => entry.image === relocatedRef(repository, entry))) {
    return `${IMAGES_LOCK_PATH}: ${plural(entries.length, 'image')} already in ${repository}`;
  }

  const locations = await fetchLocations(options);
  let how: string;
  if (locations !== undefined && unlistedInLocations(entries, locations).length === 0) {
    how = 'as its locations image records';
  } else {
    const missing = await firstMissing(entries, repository, options);
    if (missing !== undefined) {
      return `${IMAGES_LOCK_PATH}: kept the original image locations (${relocatedRef(repository, missing)} does not exist)`;
    }
    how = 'each found there by digest';
  }
  await writeFile(join(options.directory, IMAGES_LOCK_PATH), renderRelocatedImagesLock(entries, repository));
  return `${IMAGES_LOCK_PATH}: ${plural(entries.length, 'image')} relocated to ${repository} (${how})`;
}
