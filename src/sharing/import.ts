// What to do with the copy a SecretImport asks for. Pure: the controller
// reads the export, source Secret, namespace and existing copy, and carries
// out the one action decided here.
//
// Beyond upstream: a same-named Secret not controlled by this SecretImport
// is never overwritten or deleted, and a change of source type (immutable on
// a Secret) is handled by delete + create.

import { IMAGE_PULL_SECRET_ANNOTATION } from './annotations.js';
import { matchExportToNamespace } from './namespace-match.js';
import { sameSecretData } from './secret-data.js';
import { refString, type NamespaceInput, type SecretExportInput, type SecretInput } from './types.js';

const SECRETGEN_GROUP = 'secretgen.carvel.dev';

export const NO_MATCH_MESSAGE = 'No matching export/secret';
export const MISSING_FROM_NAMESPACE_MESSAGE =
  "Validation errors:\n- Validating 'spec.fromNamespace': Expected to be non-empty";

export interface SecretImportInput {
  /** Defaults to secretgen.carvel.dev/v1alpha1 / SecretImport for the ownerReference. */
  apiVersion?: string;
  kind?: string;
  namespace: string;
  name: string;
  uid: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  spec: { fromNamespace?: string };
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The Secret currently at `<import ns>/<import name>`, whoever made it. */
export interface ExistingSecret {
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
  type: string;
  data?: Record<string, string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  immutable?: boolean;
}

export interface DesiredSecret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: {
    namespace: string;
    name: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: OwnerReference[];
    /** Set on updates so a concurrent change makes the write fail instead of being lost. */
    resourceVersion?: string;
  };
  type: string;
  data: Record<string, string>;
}

/** Identifies the Secret to delete; uid and resourceVersion serve as delete preconditions. */
export interface SecretTarget {
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export type ImportStatus = { type: 'ReconcileSucceeded' } | { type: 'ReconcileFailed'; message: string };

export type ImportDecision =
  | { action: 'create'; secret: DesiredSecret; status: ImportStatus }
  | { action: 'update'; secret: DesiredSecret; status: ImportStatus }
  | { action: 'recreate'; delete: SecretTarget; secret: DesiredSecret; status: ImportStatus }
  | { action: 'delete'; delete: SecretTarget; status: ImportStatus }
  | { action: 'none'; status: ImportStatus }
  | { action: 'refuse'; status: ImportStatus };

const SUCCEEDED: ImportStatus = { type: 'ReconcileSucceeded' };
const NO_MATCH: ImportStatus = { type: 'ReconcileFailed', message: NO_MATCH_MESSAGE };

export function notControlledMessage(secret: { namespace: string; name: string }): string {
  return `Secret ${refString(secret)} already exists and is not controlled by this SecretImport; it is left untouched`;
}

export function decideImport(
  importObj: SecretImportInput,
  exportsInFromNamespace: readonly SecretExportInput[],
  sourceSecret: SecretInput | undefined,
  importNamespace: NamespaceInput,
  existingCopy: ExistingSecret | undefined,
): ImportDecision {
  const owned = existingCopy !== undefined && isControlledBy(existingCopy, importObj.uid);
  const fromNamespace = importObj.spec.fromNamespace ?? '';
  if (fromNamespace === '') {
    // Upstream stops here and keeps an old copy; an import that names no source keeps no credentials here.
    return revoke(existingCopy, owned, { type: 'ReconcileFailed', message: MISSING_FROM_NAMESPACE_MESSAGE });
  }
  const source = offeredSource(
    importObj,
    fromNamespace,
    exportsInFromNamespace,
    sourceSecret,
    importNamespace,
  );
  if (source === undefined) return revoke(existingCopy, owned, NO_MATCH);
  const desired = desiredCopy(importObj, source);
  if (existingCopy === undefined) return { action: 'create', secret: desired, status: SUCCEEDED };
  if (!owned) {
    return {
      action: 'refuse',
      status: { type: 'ReconcileFailed', message: notControlledMessage(existingCopy) },
    };
  }
  if (copyIsCurrent(existingCopy, desired)) return { action: 'none', status: SUCCEEDED };
  // type and an immutable Secret's content cannot change in place.
  if (existingCopy.type !== desired.type || existingCopy.immutable === true) {
    return { action: 'recreate', delete: targetOf(existingCopy), secret: desired, status: SUCCEEDED };
  }
  const update = {
    ...desired,
    metadata: { ...desired.metadata, resourceVersion: existingCopy.resourceVersion },
  };
  if (update.metadata.resourceVersion === undefined) delete update.metadata.resourceVersion;
  return { action: 'update', secret: update, status: SUCCEEDED };
}

/** The source Secret, when an export of the same name in fromNamespace allows the import's namespace. */
function offeredSource(
  importObj: SecretImportInput,
  fromNamespace: string,
  exports: readonly SecretExportInput[],
  sourceSecret: SecretInput | undefined,
  importNamespace: NamespaceInput,
): SecretInput | undefined {
  const exportObj = exports.find((e) => e.namespace === fromNamespace && e.name === importObj.name);
  if (exportObj === undefined || matchExportToNamespace(exportObj, importNamespace) === undefined)
    return undefined;
  const isSource = sourceSecret?.namespace === fromNamespace && sourceSecret.name === importObj.name;
  return isSource ? sourceSecret : undefined;
}

function revoke(
  existingCopy: ExistingSecret | undefined,
  owned: boolean,
  status: ImportStatus,
): ImportDecision {
  // A Secret this import does not control is someone else's: never delete it.
  if (existingCopy !== undefined && owned)
    return { action: 'delete', delete: targetOf(existingCopy), status };
  return { action: 'none', status };
}

export function isControlledBy(secret: { ownerReferences?: OwnerReference[] }, ownerUid: string): boolean {
  return (secret.ownerReferences ?? []).some((ref) => ref.controller === true && ref.uid === ownerUid);
}

/**
 * Whether a SecretImport controls this Secret (it is an import's copy). The
 * import owns such a copy whole, so the placeholder controller must leave it
 * alone even when the import's annotations mark it as a placeholder; two
 * writers with different ideas of its content would rewrite it forever.
 */
export function isImportCopy(secret: { ownerReferences?: readonly OwnerReference[] }): boolean {
  return (secret.ownerReferences ?? []).some(
    (ref) =>
      ref.controller === true &&
      ref.kind === 'SecretImport' &&
      ref.apiVersion.startsWith(`${SECRETGEN_GROUP}/`),
  );
}

/** Warning for a SecretImport that carries the placeholder annotation (it reaches the copy, which stays a copy). */
export function placeholderAnnotationIgnoredMessage(importObj: SecretImportInput): string {
  const copy = refString(importObj);
  const source = refString({ namespace: importObj.spec.fromNamespace ?? '', name: importObj.name });
  return (
    `Secret ${copy} is this SecretImport's copy of ${source}; its ${IMAGE_PULL_SECRET_ANNOTATION} ` +
    `annotation is ignored and the copy holds the source's data. To merge exported credentials, ` +
    `annotate a Secret of another name instead`
  );
}

export function controllerReference(importObj: SecretImportInput): OwnerReference {
  return {
    apiVersion: importObj.apiVersion ?? 'secretgen.carvel.dev/v1alpha1',
    kind: importObj.kind ?? 'SecretImport',
    name: importObj.name,
    uid: importObj.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Type and data from the source (full replace); labels and annotations from the SecretImport, as upstream. */
export function desiredCopy(importObj: SecretImportInput, source: SecretInput): DesiredSecret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      namespace: importObj.namespace,
      name: importObj.name,
      labels: { ...importObj.labels },
      annotations: { ...importObj.annotations },
      ownerReferences: [controllerReference(importObj)],
    },
    type: source.type,
    data: { ...source.data },
  };
}

function copyIsCurrent(existing: ExistingSecret, desired: DesiredSecret): boolean {
  return (
    existing.type === desired.type &&
    existing.immutable !== true &&
    sameSecretData(existing.data ?? {}, desired.data) &&
    sameStringMap(existing.labels ?? {}, desired.metadata.labels) &&
    sameStringMap(existing.annotations ?? {}, desired.metadata.annotations) &&
    sameOwnerReferences(existing.ownerReferences ?? [], desired.metadata.ownerReferences)
  );
}

function sameStringMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key])
  );
}

function sameOwnerReferences(a: readonly OwnerReference[], b: readonly OwnerReference[]): boolean {
  return (
    a.length === b.length &&
    a.every((ref, i) => {
      const other = b[i];
      return (
        other !== undefined &&
        ref.apiVersion === other.apiVersion &&
        ref.kind === other.kind &&
        ref.name === other.name &&
        ref.uid === other.uid &&
        (ref.controller ?? false) === (other.controller ?? false) &&
        (ref.blockOwnerDeletion ?? false) === (other.blockOwnerDeletion ?? false)
      );
    })
  );
}

function targetOf(secret: ExistingSecret): SecretTarget {
  const target: SecretTarget = { namespace: secret.namespace, name: secret.name };
  if (secret.uid !== undefined) target.uid = secret.uid;
  if (secret.resourceVersion !== undefined) target.resourceVersion = secret.resourceVersion;
  return target;
}
