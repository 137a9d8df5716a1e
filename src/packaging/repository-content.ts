// PackageRepository content: validating the documents of a bundle's
// `packages/` directory, preparing them for the repository's namespace,
// resolving two repositories that provide the same object, and pruning.

import semver from 'semver';
import type { ObjectMeta, Package, PackageMetadata } from './types.js';
import { DATA_PACKAGING_API_VERSION, cloneJson } from './types.js';
import { parseConstraint } from './version-selection.js';

export const PACKAGE_REPOSITORY_REF_ANNOTATION = 'packaging.carvel.dev/package-repository-ref';
export const REVISION_ANNOTATION = 'packaging.carvel.dev/revision';

export type RepositoryObject = (Package | PackageMetadata) & { kind: 'Package' | 'PackageMetadata' };

export interface RepositoryRef {
  namespace: string;
  name: string;
}

export function repositoryRefValue(repo: RepositoryRef): string {
  return `${repo.namespace}/${repo.name}`;
}

// ---------------------------------------------------------------------------
// Validation of Package / PackageMetadata

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`);

function fullyQualifiedNameErrors(field: string, name: string | undefined): string[] {
  if (!name) return [`${field}: Required value`];
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return [`${field}: Invalid value "${name}": must be a lowercase RFC 1123 subdomain`];
  }
  if (name.split('.').length < 3) {
    return [
      `${field}: Invalid value "${name}": should be a domain with at least three segments separated by dots`,
    ];
  }
  return [];
}

/** Field errors of a Package (empty when valid): refName, strict semver version, name = refName.version, constraints. */
export function validatePackage(pkg: Package): string[] {
  const errors: string[] = [];
  const refName = pkg.spec?.refName;
  const version = pkg.spec?.version;
  errors.push(...fullyQualifiedNameErrors('spec.refName', refName));
  if (!version) errors.push('spec.version: Required value');
  else if (semver.parse(version, { loose: false }) === null || !/^\d/.test(version)) {
    errors.push(`spec.version: Invalid value "${version}": must be valid semver`);
  }
  const name = pkg.metadata?.name;
  if (name !== `${refName ?? ''}.${version ?? ''}`) {
    errors.push(
      `metadata.name: Invalid value "${name ?? ''}": must be <spec.refName> + '.' + <spec.version>`,
    );
  }
  for (const field of ['kubernetesVersionSelection', 'kappControllerVersionSelection'] as const) {
    const constraints = pkg.spec?.[field]?.constraints;
    if (constraints) {
      const parsed = parseConstraint(constraints);
      if (!parsed.ok)
        errors.push(`spec.${field}.constraints: Invalid value "${constraints}": ${parsed.error}`);
    }
  }
  return errors;
}

/** Field errors of a PackageMetadata: metadata.name is a fully qualified name. */
export function validatePackageMetadata(pkgm: PackageMetadata): string[] {
  return fullyQualifiedNameErrors('metadata.name', pkgm.metadata?.name);
}

// ---------------------------------------------------------------------------
// Content

/** Packages and PackageMetadatas one repository may create (real repositories have a few hundred). */
export const MAX_REPOSITORY_OBJECTS = 2000;
/** Size of one object as JSON; the API server refuses objects near 1.5 MiB, so refuse before writing anything. */
export const MAX_REPOSITORY_OBJECT_BYTES = 1024 * 1024;

export interface RepositoryContentLimits {
  objects: number;
  objectBytes: number;
}

export const DEFAULT_REPOSITORY_CONTENT_LIMITS: Readonly<RepositoryContentLimits> = {
  objects: MAX_REPOSITORY_OBJECTS,
  objectBytes: MAX_REPOSITORY_OBJECT_BYTES,
};

function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${Number((bytes / (1024 * 1024)).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

export type RepositoryContentResult =
  | { ok: true; objects: RepositoryObject[]; packages: Package[]; packageMetadatas: PackageMetadata[] }
  | { ok: false; message: string };

function describe(doc: unknown, index: number, source: string | undefined): string {
  const where = source ?? `document ${index + 1}`;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return where;
  const o = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
  const gvk = `${typeof o.apiVersion === 'string' ? o.apiVersion : '<no apiVersion>'}/${
    typeof o.kind === 'string' ? o.kind : '<no kind>'
  }`;
  const name = typeof o.metadata?.name === 'string' ? ` "${o.metadata.name}"` : '';
  return `${where}: ${gvk}${name}`;
}

function cleanMetadata(meta: ObjectMeta | undefined, repoRef: string): ObjectMeta {
  const out: ObjectMeta = { name: meta?.name ?? '' };
  if (meta?.labels && Object.keys(meta.labels).length > 0) out.labels = cloneJson(meta.labels);
  out.annotations = { ...cloneJson(meta?.annotations ?? {}), [PACKAGE_REPOSITORY_REF_ANNOTATION]: repoRef };
  return out;
}

/**
 * Validates and prepares the YAML documents found under `packages/`.
 * Empty documents (null/undefined) are skipped. Everything else must be a
 * Package or PackageMetadata of data.packaging.carvel.dev/v1alpha1 that
 * passes validation, and each kind/name may appear once. Kept metadata:
 * name, labels, annotations (namespace and server-set fields are dropped);
 * the package-repository-ref annotation `<ns>/<name>` is added. All problems
 * are reported, one per line. `sources[i]` (e.g. `packages/a.yml (document 2)`)
 * names document i in messages. More than `limits.objects` non-empty documents,
 * or an object over `limits.objectBytes` as JSON, is invalid content too.
 */
export function processRepositoryContent(
  repo: RepositoryRef,
  documents: readonly unknown[],
  sources?: readonly (string | undefined)[],
  limits: RepositoryContentLimits = DEFAULT_REPOSITORY_CONTENT_LIMITS,
): RepositoryContentResult {
  const repoRef = repositoryRefValue(repo);
  // Every non-empty document would become an object: refuse before validating any.
  const nonEmpty = documents.filter((doc) => doc !== null && doc !== undefined).length;
  if (nonEmpty > limits.objects) {
    return {
      ok: false,
      message: `Invalid package repository content: ${nonEmpty} documents, more than the limit of ${limits.objects} Packages and PackageMetadatas per repository`,
    };
  }
  const problems: string[] = [];
  const objects: RepositoryObject[] = [];
  const seen = new Map<string, number>();

  documents.forEach((doc, index) => {
    if (doc === null || doc === undefined) return;
    const where = describe(doc, index, sources?.[index]);
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      problems.push(
        `${where}: expected a Kubernetes object, got ${Array.isArray(doc) ? 'a list' : typeof doc}`,
      );
      return;
    }
    const obj = doc as { apiVersion?: unknown; kind?: unknown; metadata?: ObjectMeta; spec?: unknown };
    if (
      obj.apiVersion !== DATA_PACKAGING_API_VERSION ||
      (obj.kind !== 'Package' && obj.kind !== 'PackageMetadata')
    ) {
      problems.push(
        `${where} is not allowed: only Package and PackageMetadata of ${DATA_PACKAGING_API_VERSION} may appear in 'packages/'`,
      );
      return;
    }
    const kind = obj.kind;
    const prepared = {
      apiVersion: DATA_PACKAGING_API_VERSION,
      kind,
      metadata: cleanMetadata(obj.metadata, repoRef),
      spec: cloneJson(obj.spec ?? {}),
    } as RepositoryObject;
    const bytes = Buffer.byteLength(JSON.stringify(prepared));
    if (bytes > limits.objectBytes) {
      problems.push(
        `${where} is ${formatSize(bytes)} as JSON, more than the limit of ${formatSize(limits.objectBytes)} per object`,
      );
      return;
    }
    const errors = kind === 'Package' ? validatePackage(prepared) : validatePackageMetadata(prepared);
    if (errors.length > 0) {
      problems.push(`${where} is invalid: ${errors.join('; ')}`);
      return;
    }
    const key = `${kind}/${prepared.metadata?.name ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push(`${where} duplicates ${describe(documents[first], first, sources?.[first])}`);
      return;
    }
    seen.set(key, index);
    objects.push(prepared);
  });

  if (problems.length > 0) {
    return { ok: false, message: `Invalid package repository content: ${problems.join('\n')}` };
  }
  return {
    ok: true,
    objects,
    packages: objects.filter((o) => o.kind === 'Package'),
    packageMetadatas: objects.filter((o) => o.kind === 'PackageMetadata'),
  };
}

// ---------------------------------------------------------------------------
// Two repositories, one object

/** Parsed packaging.carvel.dev/revision; [-1] when absent, undefined when malformed. */
export function parseRevision(
  annotations: Readonly<Record<string, string>> | undefined,
): number[] | undefined {
  const raw = annotations?.[REVISION_ANNOTATION];
  if (raw === undefined) return [-1];
  const text = raw.trim();
  if (!/^\d+(\.\d+)*$/.test(text)) return undefined;
  return text.split('.').map(Number);
}

/** <0, 0, >0: element-wise, then the longer one is higher (1.0 > 1). */
export function compareRevisions(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// Bookkeeping keys ignored when comparing two repositories' copies.
const IGNORED_ANNOTATIONS = new Set([
  PACKAGE_REPOSITORY_REF_ANNOTATION,
  'kapp.k14s.io/disable-original',
  'kapp.k14s.io/disable-wait',
  'kapp.k14s.io/identity',
  'kapp.k14s.io/create-strategy',
  'kapp.k14s.io/noop',
  'kubectl.kubernetes.io/last-applied-configuration',
]);
const IGNORED_LABELS = new Set(['kapp.k14s.io/app', 'kapp.k14s.io/association']);

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}

function withoutKeys(
  map: Readonly<Record<string, string>> | undefined,
  ignored: Set<string>,
): Record<string, string> {
  return Object.fromEntries(Object.entries(map ?? {}).filter(([k]) => !ignored.has(k)));
}

/** Why two copies differ, or undefined when identical (spec, labels, annotations minus bookkeeping keys). */
export function differenceBetween(
  existing: RepositoryObject,
  incoming: RepositoryObject,
): string | undefined {
  const es = (existing.spec ?? {}) as Record<string, unknown>;
  const ns = (incoming.spec ?? {}) as Record<string, unknown>;
  if (!deepEqual(es, ns)) {
    for (const k of Object.keys(ns).sort()) if (!(k in es)) return `spec.${k} only in the incoming copy`;
    for (const k of Object.keys(es).sort()) {
      if (!(k in ns)) return `spec.${k} only in the existing copy`;
      if (!deepEqual(es[k], ns[k])) return `spec.${k} differs`;
    }
    return 'spec differs';
  }
  if (
    !deepEqual(
      withoutKeys(existing.metadata?.labels, IGNORED_LABELS),
      withoutKeys(incoming.metadata?.labels, IGNORED_LABELS),
    )
  ) {
    return 'metadata.labels differ';
  }
  if (
    !deepEqual(
      withoutKeys(existing.metadata?.annotations, IGNORED_ANNOTATIONS),
      withoutKeys(incoming.metadata?.annotations, IGNORED_ANNOTATIONS),
    )
  ) {
    return 'metadata.annotations differ';
  }
  return undefined;
}

export type ConflictResolution =
  /** Same repository (or the existing object has no owner yet): write the incoming copy. */
  | { action: 'apply' }
  /** Another repository provides it: leave the existing copy alone. */
  | { action: 'keep-existing'; reason: 'identical' | 'existing-revision-higher' }
  /** Another repository provides it at a lower revision: overwrite with the incoming copy (ownership moves). */
  | { action: 'replace'; reason: 'incoming-revision-higher' }
  | { action: 'conflict'; message: string };

/**
 * Decides between the object already in the namespace and the copy a
 * repository wants to write (both of the same kind and name; `incoming`
 * carries its repository's package-repository-ref annotation).
 */
export function resolveRepositoryConflict(
  existing: RepositoryObject,
  incoming: RepositoryObject,
): ConflictResolution {
  const incomingOwner = incoming.metadata?.annotations?.[PACKAGE_REPOSITORY_REF_ANNOTATION];
  const existingOwner = existing.metadata?.annotations?.[PACKAGE_REPOSITORY_REF_ANNOTATION] ?? incomingOwner;
  if (existingOwner === incomingOwner) return { action: 'apply' };

  const difference = differenceBetween(existing, incoming);
  if (difference === undefined) return { action: 'keep-existing', reason: 'identical' };

  const what = `${kindOf(incoming)}/${incoming.metadata?.name ?? existing.metadata?.name ?? ''}`;
  const existingRev = parseRevision(existing.metadata?.annotations);
  const incomingRev = parseRevision(incoming.metadata?.annotations);
  if (!existingRev || !incomingRev) {
    const bad = !incomingRev ? incoming : existing;
    const raw = bad.metadata?.annotations?.[REVISION_ANNOTATION] ?? '';
    return {
      action: 'conflict',
      message: `Conflicting resources: ${what} differs between PackageRepository ${existingOwner ?? '?'} and ${incomingOwner ?? '?'} (${difference}), and annotation ${REVISION_ANNOTATION} "${raw}" is not dot-separated integers`,
    };
  }
  const cmp = compareRevisions(existingRev, incomingRev);
  if (cmp > 0) return { action: 'keep-existing', reason: 'existing-revision-higher' };
  if (cmp < 0) return { action: 'replace', reason: 'incoming-revision-higher' };
  return {
    action: 'conflict',
    message: `Conflicting resources: ${what} is already provided by PackageRepository ${existingOwner ?? '?'} and PackageRepository ${incomingOwner ?? '?'} provides a different one (${difference}); give one of them a higher ${REVISION_ANNOTATION} annotation`,
  };
}

/**
 * The kind of a repository object. List items read from the API server often
 * lack `kind`; then an object with spec.refName or spec.version is a Package,
 * anything else a PackageMetadata.
 */
export function kindOf(o: Package | PackageMetadata): 'Package' | 'PackageMetadata' {
  if (o.kind === 'Package' || o.kind === 'PackageMetadata') return o.kind;
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  return spec['refName'] !== undefined || spec['version'] !== undefined ? 'Package' : 'PackageMetadata';
}

export interface ObjectKey {
  kind: string;
  name: string;
}

/**
 * Objects this repository created earlier that its new content no longer
 * has. With `repo` given, objects whose package-repository-ref names another
 * repository (taken over meanwhile) are never pruned. Sorted by kind, name.
 */
export function packagesToPrune(
  ownedByThisRepo: readonly (Package | PackageMetadata)[],
  incoming: readonly (Package | PackageMetadata)[],
  repo?: RepositoryRef,
): ObjectKey[] {
  const keyOf = (o: Package | PackageMetadata) => `${kindOf(o)}/${o.metadata?.name ?? ''}`;
  const wanted = new Set(incoming.map(keyOf));
  const ref = repo ? repositoryRefValue(repo) : undefined;
  const out = new Map<string, ObjectKey>();
  for (const o of ownedByThisRepo) {
    if (ref !== undefined && o.metadata?.annotations?.[PACKAGE_REPOSITORY_REF_ANNOTATION] !== ref) continue;
    const key = keyOf(o);
    if (!wanted.has(key)) out.set(key, { kind: kindOf(o), name: o.metadata?.name ?? '' });
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

// ---------------------------------------------------------------------------
// Applying content

/** An object as it is in the namespace (kind set by the caller, who listed it per kind). */
export type ExistingObject = RepositoryObject & { metadata: ObjectMeta & { name: string } };

export interface RepositorySyncPlan {
  /** Not in the namespace yet. */
  create: RepositoryObject[];
  /** In the namespace with other content: this repository's copy, or one it takes over by revision. */
  update: Array<{ existing: ExistingObject; incoming: RepositoryObject }>;
  /** Already as wanted (no write). */
  unchanged: number;
  /** Provided by another repository, which keeps it (identical, or a higher revision). */
  keptByOther: number;
  /** This repository's objects its content no longer has. */
  prune: ObjectKey[];
  /** `Conflicting resources: ...` messages; when any, nothing should be written. */
  conflicts: string[];
}

function sameMap(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
) {
  return deepEqual(a ?? {}, b ?? {});
}

/** Whether the object in the namespace already has the incoming spec, labels and annotations. */
export function hasWantedContent(existing: RepositoryObject, incoming: RepositoryObject): boolean {
  return (
    deepEqual(existing.spec ?? {}, incoming.spec ?? {}) &&
    sameMap(existing.metadata?.labels, incoming.metadata?.labels) &&
    sameMap(existing.metadata?.annotations, incoming.metadata?.annotations)
  );
}

/**
 * What one sync of a repository writes: `incoming` are its prepared objects
 * (processRepositoryContent), `existing` every Package and PackageMetadata of
 * the namespace. Two repositories giving the same object are resolved by
 * resolveRepositoryConflict; objects this repository made earlier and no
 * longer has are pruned.
 */
export function planRepositorySync(
  repo: RepositoryRef,
  existing: readonly ExistingObject[],
  incoming: readonly RepositoryObject[],
): RepositorySyncPlan {
  const plan: RepositorySyncPlan = {
    create: [],
    update: [],
    unchanged: 0,
    keptByOther: 0,
    prune: [],
    conflicts: [],
  };
  const byKey = new Map(existing.map((o) => [`${kindOf(o)}/${o.metadata.name}`, o]));
  for (const object of incoming) {
    const current = byKey.get(`${object.kind}/${object.metadata?.name ?? ''}`);
    if (!current) {
      plan.create.push(object);
      continue;
    }
    const resolution = resolveRepositoryConflict(current, object);
    switch (resolution.action) {
      case 'conflict':
        plan.conflicts.push(resolution.message);
        break;
      case 'keep-existing':
        plan.keptByOther += 1;
        break;
      case 'apply':
      case 'replace':
        if (hasWantedContent(current, object)) plan.unchanged += 1;
        else plan.update.push({ existing: current, incoming: object });
        break;
    }
  }
  const ref = repositoryRefValue(repo);
  plan.prune = packagesToPrune(
    existing.filter((o) => o.metadata.annotations?.[PACKAGE_REPOSITORY_REF_ANNOTATION] === ref),
    incoming,
    repo,
  );
  return plan;
}
