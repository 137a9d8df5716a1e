// Plain structural types for the packaging decision modules. They follow the
// field names of the CRDs (packaging.carvel.dev/v1alpha1,
// data.packaging.carvel.dev/v1alpha1, kappctrl.k14s.io/v1alpha1) but are
// deliberately loose: unknown fields are carried through untouched.

export type JsonObject = Record<string, unknown>;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  deletionTimestamp?: string;
  [key: string]: unknown;
}

export interface LocalSecretRef {
  name?: string;
  [key: string]: unknown;
}

/** Fields common to the fetch kinds that accept a secretRef. */
export interface FetchSourceWithSecret {
  secretRef?: LocalSecretRef | null;
  [key: string]: unknown;
}

export interface HelmChartFetch {
  name?: string;
  version?: string;
  repository?: (FetchSourceWithSecret & { url?: string }) | null;
  [key: string]: unknown;
}

/** One App fetch stage: exactly one of the source kinds plus an optional path. */
export interface FetchStage {
  inline?: JsonObject | null;
  image?: (FetchSourceWithSecret & { url?: string; subPath?: string; tagSelection?: unknown }) | null;
  http?: (FetchSourceWithSecret & { url?: string }) | null;
  git?: (FetchSourceWithSecret & { url?: string; ref?: string }) | null;
  helmChart?: HelmChartFetch | null;
  imgpkgBundle?: (FetchSourceWithSecret & { image?: string; tagSelection?: unknown }) | null;
  path?: string;
  [key: string]: unknown;
}

export interface ValuesSource {
  secretRef?: { name?: string; [key: string]: unknown } | null;
  configMapRef?: { name?: string; [key: string]: unknown } | null;
  path?: string;
  downwardAPI?: unknown;
  [key: string]: unknown;
}

export interface InlinePathsFrom {
  secretRef?: { name?: string; directoryPath?: string; [key: string]: unknown } | null;
  configMapRef?: { name?: string; directoryPath?: string; [key: string]: unknown } | null;
  [key: string]: unknown;
}

export interface InlineSource {
  paths?: Record<string, string>;
  pathsFrom?: InlinePathsFrom[];
  [key: string]: unknown;
}

export interface TemplateStep {
  ytt?: { valuesFrom?: ValuesSource[]; inline?: InlineSource | null; [key: string]: unknown } | null;
  helmTemplate?: {
    name?: string;
    namespace?: string;
    valuesFrom?: ValuesSource[];
    [key: string]: unknown;
  } | null;
  [key: string]: unknown;
}

export interface AppSpec {
  serviceAccountName?: string;
  cluster?: JsonObject | null;
  fetch?: FetchStage[];
  template?: TemplateStep[];
  deploy?: JsonObject[];
  paused?: boolean;
  canceled?: boolean;
  syncPeriod?: string;
  noopDelete?: boolean;
  defaultNamespace?: string;
  [key: string]: unknown;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface GenericStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  friendlyDescription?: string;
  usefulErrorMessage?: string;
  [key: string]: unknown;
}

export interface App {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: AppSpec;
  status?: GenericStatus;
}

export interface VersionSelectionConstraint {
  constraints?: string;
}

export interface PackageSpec {
  refName?: string;
  version?: string;
  template?: { spec?: AppSpec | null } | null;
  kubernetesVersionSelection?: VersionSelectionConstraint | null;
  kappControllerVersionSelection?: VersionSelectionConstraint | null;
  [key: string]: unknown;
}

export interface Package {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: PackageSpec;
}

export interface PackageMetadata {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: JsonObject;
}

export interface Prereleases {
  identifiers?: string[] | null;
}

export interface VersionSelection {
  constraints?: string;
  prereleases?: Prereleases | null;
}

export interface PackageInstallSpec {
  serviceAccountName?: string;
  cluster?: JsonObject | null;
  packageRef?: { refName?: string; versionSelection?: VersionSelection | null } | null;
  values?: { secretRef?: { name?: string; key?: string } | null }[] | null;
  paused?: boolean;
  canceled?: boolean;
  syncPeriod?: string;
  noopDelete?: boolean;
  defaultNamespace?: string;
}

export interface PackageInstallStatus extends GenericStatus {
  version?: string;
  lastAttemptedVersion?: string;
}

export interface PackageInstall {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: PackageInstallSpec;
  status?: PackageInstallStatus;
}

/** PackageRepository fetch: exactly one of the kinds. */
export interface PackageRepositoryFetch {
  imgpkgBundle?: (FetchSourceWithSecret & { image?: string; tagSelection?: unknown }) | null;
  image?: (FetchSourceWithSecret & { url?: string; subPath?: string; tagSelection?: unknown }) | null;
  http?: (FetchSourceWithSecret & { url?: string }) | null;
  git?: (FetchSourceWithSecret & { url?: string; ref?: string }) | null;
  inline?: JsonObject | null;
  [key: string]: unknown;
}

export interface PackageRepository {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: {
    fetch?: PackageRepositoryFetch | null;
    paused?: boolean;
    syncPeriod?: string;
    [key: string]: unknown;
  };
}

export const PACKAGING_API_VERSION = 'packaging.carvel.dev/v1alpha1';
export const DATA_PACKAGING_API_VERSION = 'data.packaging.carvel.dev/v1alpha1';
export const KAPPCTRL_API_VERSION = 'kappctrl.k14s.io/v1alpha1';

/** Deep clone of JSON-like data (the objects these modules handle are plain JSON). */
export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}
