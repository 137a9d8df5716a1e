// Fetch stage runners for App and PackageRepository fetches: `image` and
// `imgpkgBundle` pulled from OCI registries with the stage's secretRef, and
// `inline` written from the spec (and Secrets). Other kinds (http, git,
// helmChart) have no runner yet, so planFetch reports them "not supported yet".

import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { ExtractError, safePathComponents } from '../registry/extract.js';
import type { FetchRequest, FetchStageRunner, StageOutcome } from './app-pipeline.js';
import {
  credentialHint,
  credentialsFromSecret,
  type FetchCredentials,
  type FetchSecretLike,
} from './fetch-credentials.js';
import { fetchStageKind } from './fetch-secrets.js';
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

export interface RegistryFetchOptions {
  registry: RegistryAccess;
  readSecret: FetchSecretReader;
  /** Parent of the temporary directories of image pulls with subPath (default: the OS temp dir). */
  tmpDir?: string;
}

const failed = (error: string): StageOutcome => ({ exitCode: 1, error });
/** A failure only a change of the spec, a watched Secret or the configuration can fix. */
const awaitingChange = (error: string): StageOutcome => ({ exitCode: 1, error, awaitsInputChange: true });

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
    if (stage[kind]?.tagSelection) {
      return awaitingChange(
        'tagSelection is not supported yet: name a tag or a digest in the image reference',
      );
    }
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

    const credentials = await this.credentials(request);
    if ('error' in credentials) return awaitingChange(credentials.error);

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
      const result = await lease.client.pull(image, {
        kind,
        targetDir: staging ?? request.directory,
        ...credentials.credentials,
      });
      if (staging) {
        const source = join(staging, ...subPathComponents);
        const found = await stat(source).catch(() => undefined);
        if (!found?.isDirectory())
          return failed(`image.subPath ${JSON.stringify(subPath)} is not a directory in ${image}`);
        await cp(source, request.directory, { recursive: true, verbatimSymlinks: true });
      }
      const skipped =
        result.skipped.length > 0 ? `, skipped ${result.skipped.length} links or special files` : '';
      return {
        exitCode: 0,
        stdout: `Fetched ${kind} ${result.pinned} (${result.files} files, ${result.bytes} bytes${skipped})`,
      };
    } catch (err) {
      if (err instanceof RegistryError) {
        return failed(
          `${err.message}${credentialHint(err.code, image, request.secretName, credentials.credentials)}`,
        );
      }
      throw err;
    } finally {
      lease.release();
      if (staging) await rm(staging, { recursive: true, force: true });
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

/** The fetch runners this operator has: image, imgpkgBundle and inline. */
export function fetchRunners(options: RegistryFetchOptions): FetchStageRunner[] {
  return [new RegistryFetchRunner(options), new InlineFetchRunner(options)];
}
