// Fetch secrets of PackageInstall Apps and PackageRepositories: the
// ext.packaging.carvel.dev/fetch-<i>-secret-name annotations, the
// `<owner>-fetch-<i>` placeholder Secrets that secretgen-controller fills, and
// which placeholders have become stale.

import type {
  FetchStage,
  LocalSecretRef,
  OwnerReference,
  PackageRepository,
  PackageRepositoryFetch,
} from './types.js';
import { cloneJson } from './types.js';

export const FETCH_SECRET_ANNOTATION_PREFIX = 'ext.packaging.carvel.dev/fetch-';
export const FETCH_SECRET_ANNOTATION_SUFFIX = '-secret-name';
export const IMAGE_PULL_SECRET_ANNOTATION = 'secretgen.carvel.dev/image-pull-secret';
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
/** base64 of {"auths":{}} */
export const EMPTY_DOCKER_CONFIG_JSON_B64 = Buffer.from('{"auths":{}}', 'utf8').toString('base64');

export function fetchSecretAnnotation(index: number): string {
  return `${FETCH_SECRET_ANNOTATION_PREFIX}${index}${FETCH_SECRET_ANNOTATION_SUFFIX}`;
}

export function placeholderName(ownerName: string, index: number): string {
  return `${ownerName}-fetch-${index}`;
}

export type FetchSecretWarningReason =
  | 'InvalidFetchSecretIndex'
  | 'EmptyFetchSecretName'
  | 'FetchSecretIndexOutOfRange'
  | 'FetchSecretNotApplicable';

/** Text for a Warning Event on the PackageInstall; `message` names the annotation. */
export interface FetchSecretWarning {
  annotation: string;
  reason: FetchSecretWarningReason;
  message: string;
}

export interface ParsedFetchSecretAnnotations {
  /** fetch stage index → Secret name */
  overrides: Map<number, string>;
  warnings: FetchSecretWarning[];
}

/**
 * Reads the fetch-<i>-secret-name annotations. Only canonical non-negative
 * decimal indexes count (`fetch-0-`, `fetch-12-`; not `fetch-01-`, `fetch-a-`),
 * which are the only keys upstream ever looks up. An empty (or blank) name is
 * ignored with a warning. When `fetchCount` is given, indexes at or beyond it
 * are dropped with a warning. Warnings come out sorted by annotation key.
 */
export function parseFetchSecretAnnotations(
  annotations: Readonly<Record<string, string>> | undefined,
  fetchCount?: number,
): ParsedFetchSecretAnnotations {
  const overrides = new Map<number, string>();
  const warnings: FetchSecretWarning[] = [];
  const keys = Object.keys(annotations ?? {}).sort();
  for (const key of keys) {
    if (!key.startsWith(FETCH_SECRET_ANNOTATION_PREFIX) || !key.endsWith(FETCH_SECRET_ANNOTATION_SUFFIX))
      continue;
    const indexText = key.slice(
      FETCH_SECRET_ANNOTATION_PREFIX.length,
      key.length - FETCH_SECRET_ANNOTATION_SUFFIX.length,
    );
    const value = annotations?.[key] ?? '';
    if (!/^(?:0|[1-9]\d*)$/.test(indexText) || !Number.isSafeInteger(Number(indexText))) {
      warnings.push({
        annotation: key,
        reason: 'InvalidFetchSecretIndex',
        message: `Ignoring annotation ${key}: fetch stage index '${indexText}' is not a non-negative integer (expected e.g. ${fetchSecretAnnotation(0)})`,
      });
      continue;
    }
    const index = Number(indexText);
    if (value.trim() === '') {
      warnings.push({
        annotation: key,
        reason: 'EmptyFetchSecretName',
        message: `Ignoring annotation ${key}: the secret name is empty`,
      });
      continue;
    }
    if (fetchCount !== undefined && index >= fetchCount) {
      warnings.push({
        annotation: key,
        reason: 'FetchSecretIndexOutOfRange',
        message: `Ignoring annotation ${key}: the package has ${fetchCount} fetch stage${fetchCount === 1 ? '' : 's'}, so there is no fetch stage ${index}`,
      });
      continue;
    }
    overrides.set(index, value);
  }
  return { overrides, warnings };
}

export type FetchStageKind = 'inline' | 'image' | 'http' | 'git' | 'helmChart' | 'imgpkgBundle' | 'unknown';

const STAGE_KINDS = ['inline', 'image', 'http', 'git', 'helmChart', 'imgpkgBundle'] as const;

/** The source kind of a fetch stage (first present, in upstream's order). */
export function fetchStageKind(stage: FetchStage): FetchStageKind {
  for (const kind of STAGE_KINDS) {
    const v = stage[kind];
    if (v !== undefined && v !== null) return kind;
  }
  return 'unknown';
}

/** The object whose `secretRef` applies for this stage, or undefined when the stage kind takes none. */
function secretHolder(stage: FetchStage): { secretRef?: LocalSecretRef | null } | undefined {
  switch (fetchStageKind(stage)) {
    case 'image':
      return stage.image ?? undefined;
    case 'http':
      return stage.http ?? undefined;
    case 'git':
      return stage.git ?? undefined;
    case 'imgpkgBundle':
      return stage.imgpkgBundle ?? undefined;
    case 'helmChart':
      return stage.helmChart?.repository ?? undefined;
    default:
      return undefined;
  }
}

function placeholderEligible(kind: FetchStageKind): boolean {
  return kind === 'image' || kind === 'imgpkgBundle';
}

export type FetchStageDecision =
  | { index: number; kind: FetchStageKind; action: 'override'; secretName: string }
  | { index: number; kind: FetchStageKind; action: 'keep'; secretName: string | undefined }
  | { index: number; kind: FetchStageKind; action: 'placeholder'; secretName: string }
  | { index: number; kind: FetchStageKind; action: 'none' };

export interface FetchSecretPlan {
  /** The fetch stages with secretRef set for overridden and placeholder stages (a deep copy). */
  fetch: FetchStage[];
  decisions: FetchStageDecision[];
  /** Placeholder Secret names to ensure exist, in stage order. */
  placeholders: string[];
  /** Overrides that could not be applied (index out of range, stage kind takes no secret). */
  warnings: FetchSecretWarning[];
}

/**
 * Decides, per fetch stage, which Secret it uses: the annotation override
 * (image, http, git, imgpkgBundle, helmChart.repository), else the stage's own
 * secretRef, else a `<owner>-fetch-<i>` placeholder for image / imgpkgBundle,
 * else none. Beyond upstream, an overridden stage gets no placeholder.
 */
export function planFetchSecrets(
  ownerName: string,
  fetchStages: readonly FetchStage[] | undefined,
  annotationOverrides: ReadonlyMap<number, string>,
): FetchSecretPlan {
  const fetch = cloneJson([...(fetchStages ?? [])]);
  const decisions: FetchStageDecision[] = [];
  const placeholders: string[] = [];
  const warnings: FetchSecretWarning[] = [];

  fetch.forEach((stage, index) => {
    const kind = fetchStageKind(stage);
    const holder = secretHolder(stage);
    const override = annotationOverrides.get(index);
    if (override !== undefined && override.trim() !== '') {
      if (holder) {
        holder.secretRef = { name: override };
        decisions.push({ index, kind, action: 'override', secretName: override });
        return;
      }
      const annotation = fetchSecretAnnotation(index);
      const why =
        kind === 'helmChart'
          ? 'its helmChart has no repository'
          : kind === 'unknown'
            ? 'it has no recognised source'
            : `${kind} fetch stages take no secret`;
      warnings.push({
        annotation,
        reason: 'FetchSecretNotApplicable',
        message: `Ignoring annotation ${annotation}: fetch stage ${index} cannot use a secret (${why})`,
      });
    }
    if (holder?.secretRef !== undefined && holder.secretRef !== null) {
      decisions.push({ index, kind, action: 'keep', secretName: holder.secretRef.name });
      return;
    }
    if (holder && placeholderEligible(kind)) {
      const name = placeholderName(ownerName, index);
      holder.secretRef = { name };
      placeholders.push(name);
      decisions.push({ index, kind, action: 'placeholder', secretName: name });
      return;
    }
    decisions.push({ index, kind, action: 'none' });
  });

  for (const [index] of [...annotationOverrides].sort(([a], [b]) => a - b)) {
    if (index >= fetch.length) {
      const annotation = fetchSecretAnnotation(index);
      warnings.push({
        annotation,
        reason: 'FetchSecretIndexOutOfRange',
        message: `Ignoring annotation ${annotation}: the package has ${fetch.length} fetch stage${fetch.length === 1 ? '' : 's'}, so there is no fetch stage ${index}`,
      });
    }
  }

  return { fetch, decisions, placeholders, warnings };
}

export interface PlaceholderOwner {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface PlaceholderSecret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: {
    name: string;
    namespace: string;
    annotations: Record<string, string>;
    ownerReferences: OwnerReference[];
  };
  type: typeof DOCKER_CONFIG_JSON_TYPE;
  data: Record<string, string>;
}

/**
 * The placeholder Secret to create (create-only; its data is never
 * overwritten). The ownerReference is a plain one (no controller,
 * no blockOwnerDeletion), as upstream sets it: the Secret is garbage
 * collected with its owner, and secretgen-controller is free to manage it.
 */
export function placeholderSecret(
  name: string,
  namespace: string,
  owner: PlaceholderOwner,
): PlaceholderSecret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      annotations: { [IMAGE_PULL_SECRET_ANNOTATION]: '' },
      ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid }],
    },
    type: DOCKER_CONFIG_JSON_TYPE,
    data: { [DOCKER_CONFIG_JSON_KEY]: EMPTY_DOCKER_CONFIG_JSON_B64 },
  };
}

/** True when `secretName` has the shape `<owner>-fetch-<i>`. */
export function isPlaceholderName(ownerName: string, secretName: string): boolean {
  const prefix = `${ownerName}-fetch-`;
  return secretName.startsWith(prefix) && /^(?:0|[1-9]\d*)$/.test(secretName.slice(prefix.length));
}

/**
 * Placeholders to delete: secrets owned by the owner (the caller filters by
 * ownerReference uid) that have the `<owner>-fetch-<i>` shape but are no
 * longer wanted. Sorted.
 */
export function stalePlaceholders(
  ownerName: string,
  existingSecretNames: readonly string[],
  wanted: readonly string[],
): string[] {
  const keep = new Set(wanted);
  return [...new Set(existingSecretNames)]
    .filter((n) => isPlaceholderName(ownerName, n) && !keep.has(n))
    .sort();
}

function repositoryPlaceholderHolder(
  fetch: PackageRepositoryFetch | null | undefined,
): { secretRef?: LocalSecretRef | null } | undefined {
  if (!fetch) return undefined;
  // Same precedence as a fetch stage: the first kind present decides.
  const kind = fetchStageKind(fetch);
  if (kind === 'image') return fetch.image ?? undefined;
  if (kind === 'imgpkgBundle') return fetch.imgpkgBundle ?? undefined;
  return undefined;
}

/** `<name>-fetch-0` when the repository fetches an image or imgpkgBundle without secretRef, else undefined. */
export function repositoryPlaceholder(pkgr: PackageRepository): string | undefined {
  const holder = repositoryPlaceholderHolder(pkgr.spec?.fetch);
  if (!holder || (holder.secretRef !== undefined && holder.secretRef !== null)) return undefined;
  return placeholderName(pkgr.metadata?.name ?? '', 0);
}

/** A copy of the repository's fetch with the placeholder set as secretRef when one applies. */
export function repositoryFetchWithPlaceholder(pkgr: PackageRepository): PackageRepositoryFetch {
  const fetch = cloneJson(pkgr.spec?.fetch ?? {});
  const name = repositoryPlaceholder(pkgr);
  const holder = repositoryPlaceholderHolder(fetch);
  if (name !== undefined && holder) holder.secretRef = { name };
  return fetch;
}
