// Fetch stage runners for App and PackageRepository fetches: `image` and
// `imgpkgBundle` pulled from OCI registries with the stage's secretRef, and
// `inline` written from the object's spec (and Secrets). Other kinds (http, git,
// helmChart) have no runner yet, so planFetch reports them "not supported yet".
// Inside a fetch admitted by the FetchLimiter, pulls stop at its deadline
// (--fetch-timeout) and all stages together stay within its disk share.

import { cp, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { diskBlocks, ExtractError, safePathComponents } from '../registry/extract.js';
import { relocateBundle, RelocationError } from './bundle-relocation.js';
import type { FetchRequest, FetchStageRunner, StageOutcome } from './app-pipeline.js';
import {
  credentialHint,
  credentialsCoverRegistry,
  credentialsFromSecret,
  withRegistryCredential,
  type FetchCredentials,
  type FetchSecretLike,
} from './fetch-credentials.js';
import { parseImageRef, type ImageRef } from '../registry/image-ref.js';
import { currentFetchPermit, formatBytes, type FetchPermit } from './fetch-limiter.js';
import { fetchStageKind } from './fetch-secrets.js';
import { selectedTagNote, selectImageTag, stageTagSelection } from './tag-selection.js';
import type { FetchStage } from './types.js';

/** A registry client for the duration of one fetch (the configuration may replace it meanwhile). */
export interface RegistryLease {
  client: RegistryClient;
  release(): void;
}

export interface RegistryAccess {
  /** Rejects (with a ConfigurationError when the operator configuration is unusable). */
  lease(): Promise<RegistryLease>;
}

/** The operator configuration cannot be used; fetches wait for it to change. */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/** Reads a Secret of the fetching resource's namespace; undefined when it does not exist. */
export type FetchSecretReader = (namespace: string, name: string) => Promise<FetchSecretLike | undefined>;

/** What a cloud keychain (iaasKeychains) answers for a registry no secretRef credential covers. */
export type KeychainAnswer =
  /** No keychain applies; `note` says why when one would have served the registry. */
  | { kind: 'none'; note?: string }
  | { kind: 'credential'; provider: string; username: string; password: string }
  | { kind: 'failed'; provider: string; error: string };

export interface FetchKeychain {
  lookup(namespace: string, registry: string, signal?: AbortSignal): Promise<KeychainAnswer>;
}

export interface RegistryFetchOptions {
  registry: RegistryAccess;
  readSecret: FetchSecretReader;
  /** Cloud keychains for registries the stage's secretRef has no credential for; none: never. */
  keychain?: FetchKeychain;
  /** Parent of the temporary directories of image pulls with subPath (default: the OS temp dir). */
  tmpDir?: string;
}

const failed = (error: string): StageOutcome => ({ exitCode: 1, error });
/** A failure only a change of the object's spec, a watched Secret or the configuration can fix. */
const awaitingChange = (error: string): StageOutcome => ({ exitCode: 1, error, awaitsInputChange: true });

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The deadline's message once the fetch's signal aborted. */
function deadlineMessage(permit: FetchPermit | undefined): string | undefined {
  return permit?.signal.aborted ? message(permit.signal.reason) : undefined;
}

/** What is left of the fetch's disk share. */
function diskLeft(permit: FetchPermit): number {
  return Math.max(0, permit.diskShareBytes - permit.diskUsedBytes);
}

function diskShareHint(permit: FetchPermit | undefined): string {
  return permit
    ? `; a fetch may use ${formatBytes(permit.diskShareBytes)} of disk (--fetch-disk-budget / --max-concurrent-fetches)`
    : '';
}

/** `image` and `imgpkgBundle` stages: one pull each, with the credentials of the stage's Secret. */
export class RegistryFetchRunner implements FetchStageRunner {
  readonly name = 'registry';

  constructor(private readonly options: RegistryFetchOptions) {}

  canRun(stage: FetchStage): boolean {
    const kind = fetchStageKind(stage);
    return kind === 'image' || kind === 'imgpkgBundle';
  }

  async run(request: FetchRequest): Promise<StageOutcome> {
    const { stage } = request;
    const kind = fetchStageKind(stage) === 'image' ? 'image' : 'imgpkgBundle';
    const image = kind === 'image' ? stage.image?.url : stage.imgpkgBundle?.image;
    if (!image) return awaitingChange(`${kind}.${kind === 'image' ? 'url' : 'image'} is required`);
    const tagSelection = stageTagSelection(kind, image, stage[kind]?.tagSelection);
    if (tagSelection && !tagSelection.ok) return awaitingChange(tagSelection.error);
    const subPath = kind === 'image' ? stage.image?.subPath : undefined;
    let subPathComponents: string[] = [];
    if (subPath) {
      try {
        subPathComponents = safePathComponents(subPath);
      } catch {
        return awaitingChange(
          `image.subPath ${JSON.stringify(subPath)} must be a relative path inside the image`,
        );
      }
    }

    const fromSecret = await this.credentials(request);
    if ('error' in fromSecret) return awaitingChange(fromSecret.error);

    const permit = currentFetchPermit();
    const expired = deadlineMessage(permit);
    if (expired !== undefined) return failed(`${image}: ${expired}`);
    const keychain = await this.keychainCredentials(request.namespace, image, fromSecret.credentials, permit);
    if ('error' in keychain) return failed(keychain.error);
    const credentials = { credentials: keychain.credentials };
    let lease: RegistryLease;
    try {
      lease = await this.options.registry.lease();
    } catch (err) {
      return err instanceof ConfigurationError ? awaitingChange(err.message) : failed(message(err));
    }
    let staging: string | undefined;
    try {
      if (subPathComponents.length > 0) {
        staging = await mkdtemp(join(this.options.tmpDir ?? tmpdir(), 'regcred-image-'));
      }
      const signal = permit ? { signal: permit.signal } : {};
      const selected = tagSelection
        ? await selectImageTag(lease.client, image, tagSelection.semver, {
            ...credentials.credentials,
            ...signal,
          })
        : undefined;
      if (selected && !selected.ok) return failed(selected.error);
      const result = await lease.client.pull(selected?.image ?? image, {
        kind,
        targetDir: staging ?? request.directory,
        ...credentials.credentials,
        ...(permit ? { signal: permit.signal, maxDiskBytes: diskLeft(permit) } : {}),
      });
      if (permit) permit.diskUsedBytes += result.diskBytes;
      if (staging) {
        const source = join(staging, ...subPathComponents);
        const found = await stat(source).catch(() => undefined);
        if (!found?.isDirectory())
          return failed(`image.subPath ${JSON.stringify(subPath)} is not a directory in ${image}`);
        await moveDirectory(source, request.directory);
      }
      const skipped =
        result.skipped.length > 0 ? `, skipped ${result.skipped.length} links or special files` : '';
      // A bundle copied with `imgpkg copy` names its images where they were before the copy.
      const relocation =
        kind === 'imgpkgBundle'
          ? await relocateBundle({
              registry: lease.client,
              directory: request.directory,
              pinned: result.pinned,
              credentials: credentials.credentials,
              owner: request.namespace,
              ...(permit ? { signal: permit.signal } : {}),
              ...(this.options.tmpDir ? { tmpDir: this.options.tmpDir } : {}),
            })
          : undefined;
      return {
        exitCode: 0,
        bytes: result.bytes,
        stdout:
          `Fetched ${kind} ${result.pinned} (${selected ? selectedTagNote(selected) : ''}${result.files} files, ${result.bytes} bytes${skipped})` +
          (keychain.provider
            ? `; credentials from the ${keychain.provider} keychain (the operator's cloud identity)`
            : '') +
          (relocation ? `; ${relocation}` : ''),
      };
    } catch (err) {
      const timedOut = deadlineMessage(permit);
      if (timedOut !== undefined) return failed(`${image}: ${timedOut}`);
      if (err instanceof RelocationError) return failed(`${image}: ${err.message}`);
      if (err instanceof RegistryError) {
        const hint = /maxDiskBytes/.test(err.reason) ? diskShareHint(permit) : '';
        const sent = keychain.provider
          ? authRejected(err.code)
            ? ` (sent the credentials of the ${keychain.provider} keychain: the operator's cloud identity)`
            : ''
          : credentialHint(err.code, image, request.secretName, credentials.credentials) +
            (keychain.note && authRejected(err.code) ? `; ${keychain.note}` : '');
        return failed(`${err.message}${hint}${sent}`);
      }
      throw err;
    } finally {
      lease.release();
      if (staging) await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * The Secret's credentials, plus a keychain credential for the image's
   * registry when the Secret has none for it and a keychain applies.
   */
  private async keychainCredentials(
    namespace: string,
    image: string,
    credentials: FetchCredentials,
    permit: FetchPermit | undefined,
  ): Promise<{ credentials: FetchCredentials; provider?: string; note?: string } | { error: string }> {
    const keychain = this.options.keychain;
    if (!keychain) return { credentials };
    let ref: ImageRef;
    try {
      ref = parseImageRef(image);
    } catch {
      return { credentials }; // the pull reports the reference
    }
    if (credentialsCoverRegistry(credentials, ref)) return { credentials };
    let answer: KeychainAnswer;
    try {
      answer = await keychain.lookup(namespace, ref.registry, permit?.signal);
    } catch (err) {
      return { error: `${image}: ${deadlineMessage(permit) ?? message(err)}` };
    }
    switch (answer.kind) {
      case 'none':
        return answer.note ? { credentials, note: answer.note } : { credentials };
      case 'failed':
        return {
          error: `${image}: no credential from the ${answer.provider} keychain (the operator's cloud identity): ${answer.error}`,
        };
      case 'credential':
        return {
          credentials: withRegistryCredential(credentials, ref.registry, answer.username, answer.password),
          provider: answer.provider,
        };
    }
  }

  private async credentials(
    request: FetchRequest,
  ): Promise<{ credentials: FetchCredentials } | { error: string }> {
    if (request.secretName === undefined) return { credentials: {} };
    const secret = await this.options.readSecret(request.namespace, request.secretName);
    if (!secret) return { error: `Secret ${request.secretName} not found in namespace ${request.namespace}` };
    const result = credentialsFromSecret(secret, request.secretName);
    return result.ok ? { credentials: result.credentials } : { error: result.error };
  }
}

const authRejected = (code: string) => code === 'UNAUTHORIZED' || code === 'DENIED';

interface InlineSource {
  paths?: Record<string, unknown>;
  pathsFrom?: Array<{
    secretRef?: { name?: string; directoryPath?: string } | null;
    configMapRef?: { name?: string; directoryPath?: string } | null;
  }>;
}

/** `inline` stages: files from `paths`, and from Secrets named in `pathsFrom`. */
export class InlineFetchRunner implements FetchStageRunner {
  readonly name = 'inline';

  constructor(private readonly options: Pick<RegistryFetchOptions, 'readSecret'>) {}

  canRun(stage: FetchStage): boolean {
    return fetchStageKind(stage) === 'inline';
  }

  async run(request: FetchRequest): Promise<StageOutcome> {
    const inline = (request.stage.inline ?? {}) as InlineSource;
    const files = new Map<string, string | Buffer>();
    for (const [path, content] of Object.entries(inline.paths ?? {})) {
      if (typeof content !== 'string')
        return awaitingChange(`inline.paths[${JSON.stringify(path)}] must be a string`);
      files.set(path, content);
    }
    for (const [index, source] of (inline.pathsFrom ?? []).entries()) {
      if (source.configMapRef)
        return awaitingChange(`inline.pathsFrom[${index}].configMapRef: not supported yet`);
      const name = source.secretRef?.name;
      if (!name) return awaitingChange(`inline.pathsFrom[${index}] needs secretRef.name`);
      const secret = await this.options.readSecret(request.namespace, name);
      if (!secret) return awaitingChange(`Secret ${name} not found in namespace ${request.namespace}`);
      const prefix = source.secretRef?.directoryPath ?? '';
      for (const [key, value] of Object.entries(secret.data ?? {})) {
        files.set(prefix ? `${prefix}/${key}` : key, Buffer.from(value, 'base64'));
      }
    }
    const permit = currentFetchPermit();
    if (permit) {
      let disk = 0;
      for (const content of files.values()) disk += diskBlocks(Buffer.byteLength(content));
      if (disk > diskLeft(permit)) {
        return awaitingChange(
          `inline files need ${disk} bytes of disk, over the ${diskLeft(permit)} bytes this fetch has left` +
            diskShareHint(permit),
        );
      }
      permit.diskUsedBytes += disk;
    }
    for (const [path, content] of files) {
      let components: string[];
      try {
        components = safePathComponents(path);
      } catch (err) {
        return awaitingChange(
          `inline path ${JSON.stringify(path)}: ${err instanceof ExtractError ? 'must be a relative path inside the fetch directory' : message(err)}`,
        );
      }
      if (components.length === 0) return awaitingChange(`inline path ${JSON.stringify(path)} names no file`);
      const target = join(request.directory, ...components);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    return { exitCode: 0, stdout: `Wrote ${files.size} inline file${files.size === 1 ? '' : 's'}` };
  }
}

/**
 * Moves an extracted subPath into place: a rename on the same filesystem
 * (the content is never on disk twice), a copy across filesystems.
 */
async function moveDirectory(source: string, target: string): Promise<void> {
  const existing = await readdir(target).catch(() => undefined);
  if (existing === undefined || existing.length === 0) {
    try {
      // rename(2) replaces an empty directory.
      await rename(source, target);
      return;
    } catch {
      // another filesystem: copy
    }
  }
  await mkdir(target, { recursive: true });
  await cp(source, target, { recursive: true, verbatimSymlinks: true });
}

/** The fetch runners this operator has: image, imgpkgBundle and inline. */
export function fetchRunners(options: RegistryFetchOptions): FetchStageRunner[] {
  return [new RegistryFetchRunner(options), new InlineFetchRunner(options)];
}
