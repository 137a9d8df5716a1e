// Pulls images and imgpkg bundles from OCI registries into a directory.
//
//   1. The credential: an explicit one, or the most specific match among a
//      `.dockerconfigjson`'s entries (auth-match.ts); anonymous otherwise.
//   2. The manifest, by tag or digest, accepting OCI and Docker v2 manifests
//      and indexes; an index resolves to linux/amd64 (or its only image).
//      Pulling by digest verifies the manifest's sha256.
//   3. The config blob: an `imgpkgBundle` fetch requires the
//      `dev.carvel.imgpkg.bundle` label in `config.Labels`.
//   4. Each layer: downloaded to a temporary file while its size and sha256
//      are checked, then extracted safely (extract.ts) in order. The blob
//      being extracted and everything extracted so far stay within
//      maxDiskBytes (the fetch's share of the operator's disk budget).
// Bodies are streamed (only manifests and the config, each at most 1 MiB,
// are held in memory) and must keep a minimum rate (throughput.ts); a
// signal (the fetch's deadline) stops the pull between and within requests.
// Requests start anonymous (or with what an earlier challenge taught, see
// auth.ts); redirects are followed, but the Authorization header only ever
// goes to the registry's own origin. Failures are RegistryErrors naming the
// image; no credential or token ever appears in one or in a log line.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ANONYMOUS, selectCredential, type RegistryCredential } from './auth-match.js';
import { RegistryAuth } from './auth.js';
import type { DockerConfigRegistry } from './dockerconfig.js';
import { errorFromNetwork, errorFromResponse, RegistryError } from './errors.js';
import {
  DEFAULT_DISK_SHARE_BYTES,
  DEFAULT_EXTRACT_LIMITS,
  diskBlocks,
  ExtractError,
  LayerExtractor,
  type ExtractLimits,
  type SkippedEntry,
} from './extract.js';
import {
  DEFAULT_RETRY,
  discard,
  guardBody,
  HttpTransport,
  readBody,
  readSome,
  withRetries,
  type RetryOptions,
  type TransportOptions,
} from './http.js';
import {
  ImageRefError,
  manifestReference,
  parseImageRef,
  pinnedImageRef,
  registryApiHost,
  type ImageRef,
} from './image-ref.js';
import type { Logger } from '../runtime/logger.js';

export const MEDIA_TYPES = Object.freeze({
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
});
const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
].join(', ');
const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);

/** The image config label that marks an imgpkg bundle (only its presence counts, as in imgpkg). */
export const IMGPKG_BUNDLE_LABEL = 'dev.carvel.imgpkg.bundle';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface RegistryLimits extends ExtractLimits {
  /** A manifest or index, held in memory while parsed. */
  maxManifestBytes: number;
  /** The image config, held in memory while parsed. */
  maxConfigBytes: number;
  /** Compressed size of one layer blob. */
  maxBlobBytes: number;
  maxLayers: number;
}

const MiB = 1024 * 1024;
/**
 * Per pull: memory holds at most one 1 MiB manifest or config at a time (plus
 * its parsed form and stream buffers); disk holds at most maxDiskBytes (the
 * blob being extracted plus what is extracted), one fetch's share of the
 * default disk budget.
 */
export const DEFAULT_REGISTRY_LIMITS: Readonly<RegistryLimits> = Object.freeze({
  ...DEFAULT_EXTRACT_LIMITS,
  maxManifestBytes: 1 * MiB,
  maxConfigBytes: 1 * MiB,
  maxBlobBytes: DEFAULT_DISK_SHARE_BYTES,
  maxLayers: 256,
});

export interface RegistryClientOptions extends TransportOptions {
  /** Retries after a failed attempt (5xx, 408, 429, network errors); default 3. */
  retries?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  limits?: Partial<RegistryLimits>;
  /** Where layer blobs are staged while verified; default os.tmpdir(). */
  tmpDir?: string;
  /** Platform picked from an index; default linux/amd64. */
  platform?: Platform;
  logger?: Logger;
}

export type FetchKind = 'image' | 'imgpkgBundle';

export interface CredentialOptions {
  /** Entries of the fetch Secret's `.dockerconfigjson` (parseDockerConfigJson); the most specific match is used. */
  auths?: readonly DockerConfigRegistry[];
  /** A credential chosen by the caller; wins over `auths`. */
  credential?: RegistryCredential;
  signal?: AbortSignal;
}

export interface PullOptions extends CredentialOptions {
  kind: FetchKind;
  /** Created if missing; must be empty. Left empty when the pull fails. */
  targetDir: string;
  /** Disk this pull may occupy, when lower than the client's maxDiskBytes (what is left of the fetch's share). */
  maxDiskBytes?: number;
}

export interface ResolveResult {
  /** `registry/repository@digest` of what the reference resolved to. */
  pinned: string;
  /** Digest of the manifest or index the reference names. */
  digest: string;
  mediaType: string;
  /** Digest of the image manifest (differs from `digest` when the reference names an index). */
  manifestDigest: string;
  manifest: ImageManifest;
  /** The dockerconfigjson key whose credential was used; undefined when anonymous. */
  credentialKey?: string;
}

export interface PullResult extends ResolveResult {
  /** The reference as given. */
  image: string;
  isBundle: boolean;
  files: number;
  directories: number;
  bytes: number;
  /** Disk blocks the extracted content occupies (see extract.ts). */
  diskBytes: number;
  skipped: SkippedEntry[];
}

interface Session {
  ref: ImageRef;
  image: string;
  base: URL;
  credential: RegistryCredential;
  credentialKey?: string;
  authorization?: string;
  signal?: AbortSignal;
}

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY = 64 * 1024;
/** An error body is only quoted: what arrives within this time is enough. */
const ERROR_BODY_WAIT_MS = 2_000;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidManifest(reason: string): RegistryError {
  return new RegistryError({ code: 'MANIFEST_INVALID', reason });
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalidManifest(`${where} is not an object`);
  const { mediaType, digest, size, platform } = value;
  if (typeof mediaType !== 'string' || mediaType === '')
    throw invalidManifest(`${where}.mediaType is missing`);
  if (typeof digest !== 'string' || !SHA256.test(digest)) {
    throw invalidManifest(`${where}.digest is not a sha256 digest`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalidManifest(`${where}.size is not a non-negative integer`);
  }
  const descriptor: Descriptor = { mediaType, digest, size };
  if (
    isObject(platform) &&
    typeof platform['os'] === 'string' &&
    typeof platform['architecture'] === 'string'
  ) {
    descriptor.platform = { os: platform['os'], architecture: platform['architecture'] };
    if (typeof platform['variant'] === 'string') descriptor.platform.variant = platform['variant'];
  }
  return descriptor;
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalidManifest(`${what} is not valid JSON`);
  }
  if (!isObject(document)) throw invalidManifest(`${what} is not a JSON object`);
  return document;
}

/** The media type of a manifest body: its `mediaType` field, else the Content-Type, else its shape. */
function manifestMediaType(document: Record<string, unknown>, contentType: string | undefined): string {
  if (typeof document['mediaType'] === 'string' && document['mediaType'] !== '') return document['mediaType'];
  if (contentType && (INDEX_TYPES.has(contentType) || IMAGE_TYPES.has(contentType))) return contentType;
  if (Array.isArray(document['manifests'])) return MEDIA_TYPES.ociIndex;
  if (document['config'] !== undefined && Array.isArray(document['layers'])) return MEDIA_TYPES.ociManifest;
  return contentType ?? 'unknown';
}

function platformName(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** linux/amd64 (or the configured platform), else the only runnable entry of the index. */
export function selectFromIndex(manifests: readonly Descriptor[], want: Platform): Descriptor {
  const runnable = manifests.filter(
    (m) => !(m.platform?.os === 'unknown' && m.platform.architecture === 'unknown'),
  );
  const exact = runnable.filter(
    (m) => m.platform?.os === want.os && m.platform.architecture === want.architecture,
  );
  const chosen =
    exact.find((m) => want.variant === undefined || m.platform?.variant === want.variant) ??
    exact[0] ??
    (runnable.length === 1 ? runnable[0] : undefined);
  if (chosen) return chosen;
  throw new RegistryError({
    code: 'NO_MATCHING_PLATFORM',
    reason: `the index has no ${platformName(want)} image (it has: ${
      manifests.map((m) => platformName(m.platform)).join(', ') || 'none'
    })`,
  });
}

/** Tags asked for per page; registries may send fewer (and a Link to the next page). */
const TAG_PAGE_SIZE = 1000;
export const MAX_TAG_PAGES = 50;
export const MAX_TAGS = 10_000;
/** The longest tag the OCI distribution API allows. */
const MAX_TAG_LENGTH = 128;

/** The tags of one `tags/list` page; tags that cannot be tags (too long, not strings) are dropped. */
function tagsOfPage(body: Buffer, host: string): string[] {
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    document = undefined;
  }
  const tags = isObject(document) ? document['tags'] : undefined;
  if (tags === null) return []; // an empty repository
  if (!Array.isArray(tags)) {
    throw new RegistryError({
      code: 'UNSUPPORTED',
      reason: 'the tag list is not a JSON object with a "tags" array',
      host,
    });
  }
  return tags.filter((t): t is string => typeof t === 'string' && t !== '' && t.length <= MAX_TAG_LENGTH);
}

/**
 * The next page named by a `Link: <url>; rel="next"` header, resolved
 * against the page; undefined at the end. Only the registry's own origin is
 * followed (the credentials go there).
 */
export function nextPage(link: string | string[] | undefined, page: URL, base: URL): URL | undefined {
  const values = typeof link === 'string' ? link.split(',') : (link ?? []).flatMap((l) => l.split(','));
  for (const value of values) {
    const open = value.indexOf('<');
    const close = value.indexOf('>', open + 1);
    if (open === -1 || close === -1) continue;
    const params = value
      .slice(close + 1)
      .toLowerCase()
      .replace(/\s+/g, '');
    if (!params.split(';').some((p) => p === 'rel="next"' || p === 'rel=next')) continue;
    let next: URL;
    try {
      next = new URL(value.slice(open + 1, close).trim(), page);
    } catch {
      return undefined;
    }
    if (next.origin !== base.origin) {
      throw new RegistryError({
        code: 'UNSUPPORTED',
        reason: `the tag list links its next page to another origin (${next.protocol}//${next.host})`,
        host: base.host,
      });
    }
    return next;
  }
  return undefined;
}

export class RegistryClient {
  private readonly transport: HttpTransport;
  private readonly auth: RegistryAuth;
  private readonly retry: RetryOptions;
  private readonly limits: RegistryLimits;
  private readonly platform: Platform;
  private readonly tmpDir: string;
  private readonly logger: Logger | undefined;

  /** Throws on invalid TLS or proxy options, naming the option but never its value. */
  constructor(options: RegistryClientOptions = {}) {
    this.transport = new HttpTransport(options);
    this.retry = {
      retries: options.retries ?? DEFAULT_RETRY.retries,
      baseDelayMs: options.retryBaseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: options.retryMaxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
      onRetry: (err, attempt, delayMs) =>
        this.logger?.debug('retrying registry request', {
          code: err.code,
          status: err.status,
          host: err.host,
          attempt,
          delayMs,
        }),
    };
    this.auth = new RegistryAuth(this.transport, this.retry);
    this.limits = { ...DEFAULT_REGISTRY_LIMITS, ...options.limits };
    this.platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
    this.tmpDir = options.tmpDir ?? tmpdir();
    this.logger = options.logger;
  }

  /** Closes idle connections. */
  close(): void {
    this.transport.close();
  }

  /** Resolves a reference to its digest and image manifest without fetching layers. */
  async resolve(image: string, options: CredentialOptions = {}): Promise<ResolveResult> {
    try {
      const session = await this.session(image, options);
      return await this.resolveSession(session);
    } catch (err) {
      throw toRegistryError(err, image);
    }
  }

  /**
   * The tags of the image's repository (`/v2/<repository>/tags/list`),
   * following `Link: <…>; rel="next"` pages on the registry's own origin.
   * Bounded: at most MAX_TAG_PAGES pages of maxManifestBytes each and
   * MAX_TAGS tags (beyond that, fails rather than choose from a partial list).
   */
  async listTags(image: string, options: CredentialOptions = {}): Promise<string[]> {
    try {
      const session = await this.session(image, options);
      const tags: string[] = [];
      let next: URL | undefined = new URL(
        `/v2/${session.ref.repository}/tags/list?n=${TAG_PAGE_SIZE}`,
        session.base,
      );
      for (let page = 0; next; page++) {
        if (page >= MAX_TAG_PAGES) {
          throw new RegistryError({
            code: 'LIMIT_EXCEEDED',
            reason: `the tag list of ${session.ref.repository} has more than ${MAX_TAG_PAGES} pages`,
            host: session.base.host,
          });
        }
        const request = 'listing tags';
        const url: URL = next;
        const { body, link } = await this.registryGetAt(
          session,
          url,
          'application/json',
          request,
          async (response) => ({
            body: await readBody(response, this.limits.maxManifestBytes, {
              host: session.base.host,
              request,
              throughput: this.transport.throughput,
            }),
            link: response.headers.link,
          }),
        );
        for (const tag of tagsOfPage(body, session.base.host)) {
          if (tags.length >= MAX_TAGS) {
            throw new RegistryError({
              code: 'LIMIT_EXCEEDED',
              reason: `${session.ref.repository} has more than ${MAX_TAGS} tags`,
              host: session.base.host,
            });
          }
          tags.push(tag);
        }
        next = nextPage(link, url, session.base);
      }
      return tags;
    } catch (err) {
      throw toRegistryError(err, image);
    }
  }

  /**
   * Whether the registry has a manifest for `image` (fetched, bounded, never
   * its layers). 404, 401 and 403 mean absent, as imgpkg reads them; other
   * failures throw.
   */
  async hasManifest(image: string, options: CredentialOptions = {}): Promise<boolean> {
    try {
      const session = await this.session(image, options);
      await this.fetchManifest(session, manifestReference(session.ref));
      return true;
    } catch (err) {
      const error = toRegistryError(err, image);
      if (error.status === 404 || error.status === 401 || error.status === 403) return false;
      throw error;
    }
  }

  /** Pulls an image or imgpkg bundle by tag or digest and extracts its layers into `targetDir`. */
  async pull(image: string, options: PullOptions): Promise<PullResult> {
    let staging: string | undefined;
    let targetPrepared = false;
    try {
      const session = await this.session(image, options);
      const resolved = await this.resolveSession(session);
      const { manifest } = resolved;

      const config = await this.fetchConfig(session, manifest.config);
      const isBundle = hasBundleLabel(config);
      if (options.kind === 'imgpkgBundle' && !isBundle) {
        throw new RegistryError({
          code: 'NOT_A_BUNDLE',
          reason:
            `expected an imgpkg bundle, but the image config has no "${IMGPKG_BUNDLE_LABEL}" label ` +
            `(it is a plain image: fetch it with "image" instead of "imgpkgBundle", or push it with "imgpkg push -b")`,
        });
      }
      if (manifest.layers.length > this.limits.maxLayers) {
        throw new RegistryError({
          code: 'LIMIT_EXCEEDED',
          reason: `the image has ${manifest.layers.length} layers, over the limit of ${this.limits.maxLayers}`,
        });
      }
      for (const layer of manifest.layers) checkLayerSupported(layer, this.limits.maxBlobBytes);

      const maxDiskBytes = Math.min(this.limits.maxDiskBytes, options.maxDiskBytes ?? Infinity);
      await prepareTarget(options.targetDir);
      targetPrepared = true;
      staging = await mkdtemp(join(this.tmpDir, 'regcred-blobs-'));
      const extractor = new LayerExtractor(options.targetDir, { ...this.limits, maxDiskBytes });
      for (const [index, layer] of manifest.layers.entries()) {
        // The blob lies on disk beside what earlier layers extracted until this layer is extracted.
        const blobDisk = diskBlocks(layer.size);
        const extracted = extractor.summary.diskBytes;
        if (extracted + blobDisk > maxDiskBytes) {
          throw new RegistryError({
            code: 'LIMIT_EXCEEDED',
            reason:
              `layer ${index + 1}/${manifest.layers.length} (${layer.digest}) is ${layer.size} bytes; with ` +
              `${extracted} bytes already extracted the pull would need more than the ${maxDiskBytes} bytes ` +
              `of disk this fetch may use (maxDiskBytes)`,
          });
        }
        const file = join(staging, `layer-${index}`);
        await this.downloadBlob(session, layer, file);
        try {
          await extractor.extractFile(file, {
            reservedBytes: blobDisk,
            ...(options.signal ? { signal: options.signal } : {}),
          });
        } catch (err) {
          if (err instanceof ExtractError) {
            throw new RegistryError({
              code: err.code,
              reason: `layer ${index + 1}/${manifest.layers.length} (${layer.digest}): ${err.message}`,
              cause: err,
            });
          }
          throw err;
        }
        await rm(file, { force: true });
      }
      const summary = extractor.summary;
      this.logger?.debug('pulled image', {
        image,
        digest: resolved.digest,
        files: summary.files,
        bytes: summary.bytes,
        skipped: summary.skipped.length,
      });
      return {
        ...resolved,
        image,
        isBundle,
        files: summary.files,
        directories: summary.directories,
        bytes: summary.bytes,
        diskBytes: summary.diskBytes,
        skipped: summary.skipped,
      };
    } catch (err) {
      if (targetPrepared) await emptyDirectory(options.targetDir).catch(() => undefined);
      throw toRegistryError(err, image);
    } finally {
      if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async session(image: string, options: CredentialOptions): Promise<Session> {
    const ref = parseImageRef(image);
    const session: Session = {
      ref,
      image,
      base: this.transport.baseUrl(registryApiHost(ref.registry)),
      credential: ANONYMOUS,
    };
    if (options.signal) session.signal = options.signal;
    if (options.credential) {
      session.credential = options.credential;
    } else if (options.auths) {
      const selection = selectCredential(options.auths, ref);
      session.credential = selection.credential;
      if (selection.key !== undefined) session.credentialKey = selection.key;
      for (const problem of selection.problems)
        this.logger?.warn('unusable registry credential', { image, problem });
    }
    if (session.base.protocol === 'http:' && session.credential.kind !== 'anonymous') {
      this.logger?.warn('sending registry credentials over plain http (dangerousAllowInsecureRegistries)', {
        registry: ref.registry,
      });
    }
    const authorization = await this.auth.preemptive(this.authRequest(session));
    if (authorization !== undefined) session.authorization = authorization;
    return session;
  }

  private authRequest(session: Session) {
    return {
      origin: session.base.origin,
      credential: session.credential,
      repository: session.ref.repository,
      ...(session.signal ? { signal: session.signal } : {}),
    };
  }

  private async resolveSession(session: Session): Promise<ResolveResult> {
    const reference = manifestReference(session.ref);
    let current = await this.fetchManifest(session, reference);
    const top = current;
    for (let depth = 0; INDEX_TYPES.has(current.mediaType); depth++) {
      if (depth >= 2) throw invalidManifest('indexes nested more than two levels deep');
      const manifests = current.document['manifests'];
      if (!Array.isArray(manifests)) throw invalidManifest('the index has no manifests array');
      const descriptors = manifests.map((m, i) => parseDescriptor(m, `manifests[${i}]`));
      const chosen = selectFromIndex(descriptors, this.platform);
      current = await this.fetchManifest(session, chosen.digest);
    }
    if (!IMAGE_TYPES.has(current.mediaType)) {
      throw new RegistryError({
        code: 'UNSUPPORTED',
        reason: `unsupported manifest media type ${JSON.stringify(current.mediaType)}`,
      });
    }
    const document = current.document;
    if (document['schemaVersion'] !== 2) throw invalidManifest('schemaVersion is not 2');
    const layers = document['layers'];
    if (!Array.isArray(layers)) throw invalidManifest('layers is not an array');
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: current.mediaType,
      config: parseDescriptor(document['config'], 'config'),
      layers: layers.map((l, i) => parseDescriptor(l, `layers[${i}]`)),
    };
    const result: ResolveResult = {
      pinned: pinnedImageRef(session.ref, top.digest),
      digest: top.digest,
      mediaType: top.mediaType,
      manifestDigest: current.digest,
      manifest,
    };
    if (session.credentialKey !== undefined) result.credentialKey = session.credentialKey;
    return result;
  }

  private async fetchManifest(
    session: Session,
    reference: string,
  ): Promise<{ document: Record<string, unknown>; digest: string; mediaType: string }> {
    const request = `fetching manifest ${reference}`;
    const { body, contentType } = await this.registryGet(
      session,
      `manifests/${reference}`,
      MANIFEST_ACCEPT,
      request,
      async (response) => ({
        body: await readBody(response, this.limits.maxManifestBytes, {
          host: session.base.host,
          request,
          throughput: this.transport.throughput,
        }),
        contentType: response.headers['content-type']?.split(';')[0]?.trim(),
      }),
    );
    const digest = sha256(body);
    if (SHA256.test(reference) && digest !== reference) {
      throw new RegistryError({
        code: 'DIGEST_INVALID',
        reason: `manifest digest mismatch: requested ${reference}, received content with digest ${digest}`,
        host: session.base.host,
      });
    }
    const document = parseJson(body, `manifest ${reference}`);
    return { document, digest, mediaType: manifestMediaType(document, contentType) };
  }

  private async fetchConfig(
    session: Session,
    descriptor: Descriptor,
  ): Promise<Record<string, unknown> | undefined> {
    if (descriptor.size > this.limits.maxConfigBytes) {
      throw new RegistryError({
        code: 'LIMIT_EXCEEDED',
        reason: `the config blob is ${descriptor.size} bytes, over the limit of ${this.limits.maxConfigBytes}`,
      });
    }
    const chunks: Buffer[] = [];
    await this.fetchBlob(session, descriptor, 'config', {
      reset: () => {
        chunks.length = 0;
      },
      write: async (chunk) => {
        chunks.push(chunk);
      },
    });
    try {
      const document: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      return isObject(document) ? document : undefined;
    } catch {
      return undefined; // artifacts may carry a non-JSON config; such an image is simply no bundle
    }
  }

  private async downloadBlob(session: Session, descriptor: Descriptor, path: string): Promise<void> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      await this.fetchBlob(session, descriptor, 'layer', {
        reset: async () => {
          await handle?.close();
          handle = await open(path, 'w');
        },
        write: async (chunk) => {
          await handle!.write(chunk);
        },
      });
    } finally {
      await handle?.close();
    }
  }

  /** GETs a blob, streaming it to `sink` while checking its size and sha256. */
  private async fetchBlob(
    session: Session,
    descriptor: Descriptor,
    what: string,
    sink: { reset: () => Promise<void> | void; write: (chunk: Buffer) => Promise<void> },
  ): Promise<void> {
    const request = `fetching ${what} blob ${descriptor.digest}`;
    await this.registryGet(session, `blobs/${descriptor.digest}`, '*/*', request, async (response) => {
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared !== descriptor.size) {
        discard(response);
        throw new RegistryError({
          code: 'BLOB_INVALID',
          reason: `${what} blob ${descriptor.digest} is ${declared} bytes, the manifest says ${descriptor.size}`,
          host: session.base.host,
        });
      }
      await sink.reset();
      const hash = createHash('sha256');
      let size = 0;
      const guard = guardBody(response, this.transport.throughput, { host: session.base.host, request });
      try {
        for await (const chunk of response as AsyncIterable<Buffer>) {
          guard.add(chunk.length);
          size += chunk.length;
          if (size > descriptor.size) {
            response.destroy();
            throw new RegistryError({
              code: 'BLOB_INVALID',
              reason: `${what} blob ${descriptor.digest} is longer than the ${descriptor.size} bytes the manifest says`,
              host: session.base.host,
            });
          }
          hash.update(chunk);
          await sink.write(chunk);
        }
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        throw errorFromNetwork(err, session.base.host);
      } finally {
        guard.stop();
      }
      const digest = `sha256:${hash.digest('hex')}`;
      if (size !== descriptor.size || digest !== descriptor.digest) {
        throw new RegistryError({
          code: 'DIGEST_INVALID',
          reason: `${what} blob digest mismatch: expected ${descriptor.digest} (${descriptor.size} bytes), received ${digest} (${size} bytes)`,
          host: session.base.host,
        });
      }
    });
  }

  /**
   * GET `/v2/<repository>/<path>` with retries; answers one 401 challenge
   * per attempt, follows redirects and hands a 200 response to `consume`
   * (inside the retry, so a broken body is fetched again).
   */
  private async registryGet<T>(
    session: Session,
    path: string,
    accept: string,
    request: string,
    consume: (response: IncomingMessage) => Promise<T>,
  ): Promise<T> {
    const url = new URL(`/v2/${session.ref.repository}/${path}`, session.base);
    return this.registryGetAt(session, url, accept, request, consume);
  }

  /** registryGet of a URL on the registry's origin. */
  private async registryGetAt<T>(
    session: Session,
    url: URL,
    accept: string,
    request: string,
    consume: (response: IncomingMessage) => Promise<T>,
  ): Promise<T> {
    const context = { host: session.base.host, request, throughput: this.transport.throughput };
    const retry = session.signal ? { ...this.retry, signal: session.signal } : this.retry;
    return withRetries(async () => {
      let { response, origin } = await this.follow(session, url, accept);
      if (response.statusCode === 401 && origin === session.base.origin) {
        const body = await readSome(response, MAX_ERROR_BODY, ERROR_BODY_WAIT_MS);
        const rejected = session.authorization;
        const answer = await this.auth.answer(
          this.authRequest(session),
          response.headers['www-authenticate'],
          rejected,
        );
        if (answer === undefined) throw errorFromResponse(401, body, context);
        session.authorization = answer;
        ({ response, origin } = await this.follow(session, url, accept));
      }
      const status = response.statusCode ?? 0;
      if (status !== 200) {
        const body = await readSome(response, MAX_ERROR_BODY, ERROR_BODY_WAIT_MS);
        const retryAfter = response.headers['retry-after'];
        const where = origin === session.base.origin ? context : { ...context, host: new URL(origin).host };
        throw errorFromResponse(status, body, retryAfter === undefined ? where : { ...where, retryAfter });
      }
      return consume(response);
    }, retry);
  }

  /** Sends a GET, following redirects; Authorization goes to the registry's origin only. */
  private async follow(
    session: Session,
    start: URL,
    accept: string,
  ): Promise<{ response: IncomingMessage; origin: string }> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { Accept: accept };
      if (session.authorization !== undefined && url.origin === session.base.origin) {
        headers['Authorization'] = session.authorization;
      }
      const response = await this.transport.send(url, {
        headers,
        ...(session.signal ? { signal: session.signal } : {}),
      });
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (![301, 302, 303, 307, 308].includes(status) || location === undefined) {
        return { response, origin: url.origin };
      }
      discard(response);
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError({
          code: 'TOO_MANY_REDIRECTS',
          reason: `more than ${MAX_REDIRECTS} redirects`,
          host: url.host,
        });
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new RegistryError({ code: 'NETWORK', reason: 'redirect to an invalid URL', host: url.host });
      }
      // https may redirect to https anywhere; to plain http only where plainHttp allows it.
      if (
        next.protocol !== 'https:' &&
        !(next.protocol === 'http:' && (url.protocol === 'http:' || this.transport.allowsPlainHttp(next)))
      ) {
        throw new RegistryError({
          code: 'INSECURE_REDIRECT',
          reason: `refusing a redirect from ${url.protocol}//${url.host} to ${next.protocol}//${next.host}`,
          host: url.host,
        });
      }
      url = next;
    }
  }
}

function hasBundleLabel(config: Record<string, unknown> | undefined): boolean {
  const inner = config?.['config'];
  const labels = isObject(inner) ? inner['Labels'] : undefined;
  return isObject(labels) && Object.hasOwn(labels, IMGPKG_BUNDLE_LABEL);
}

function checkLayerSupported(layer: Descriptor, maxBlobBytes: number): void {
  if (/\+zstd$|zstd/.test(layer.mediaType)) {
    throw new RegistryError({
      code: 'UNSUPPORTED',
      reason: `layer ${layer.digest} is zstd-compressed (${layer.mediaType}), which is not supported`,
    });
  }
  if (layer.size > maxBlobBytes) {
    throw new RegistryError({
      code: 'LIMIT_EXCEEDED',
      reason: `layer ${layer.digest} is ${layer.size} bytes, over the limit of ${maxBlobBytes} (maxBlobBytes)`,
    });
  }
}

async function prepareTarget(dir: string): Promise<void> {
  let existing;
  try {
    existing = await stat(dir);
  } catch {
    existing = undefined;
  }
  if (!existing) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return;
  }
  if (!existing.isDirectory() || (await readdir(dir)).length > 0) {
    throw new RegistryError({
      code: 'INVALID_TARGET',
      reason: 'the target directory must be empty or absent',
    });
  }
}

async function emptyDirectory(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
}

/** Any failure as a RegistryError naming the image. */
export function toRegistryError(err: unknown, image: string): RegistryError {
  if (err instanceof RegistryError) return err.withImage(image);
  if (err instanceof ImageRefError) {
    return new RegistryError({ code: 'INVALID_REFERENCE', reason: err.message, image, cause: err });
  }
  if (err instanceof ExtractError)
    return new RegistryError({ code: err.code, reason: err.message, image, cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new RegistryError({ code: 'INTERNAL', reason: message, image, cause: err });
}
