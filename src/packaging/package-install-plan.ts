// What a PackageInstall reconcile should do, decided from the current state
// alone: which version, which App, which placeholders to create or remove,
// which warnings to emit, and the status to report. The controller performs
// the writes in the order placeholders → App → stale placeholders → status.

import { jsonEqual, nextCondition } from '../runtime/conditions.js';
import { buildApp, validatePackageInstallValues } from './app-builder.js';
import {
  parseFetchSecretAnnotations,
  planFetchSecrets,
  stalePlaceholders,
  type FetchSecretWarning,
} from './fetch-secrets.js';
import { visiblePackages } from './package-visibility.js';
import {
  mirrorAppStatus,
  reconcileFailedStatus,
  reconcilingStatus,
  type StatusDecision,
} from './pkgi-status.js';
import type { App, Package, PackageInstall, PackageInstallStatus } from './types.js';
import {
  IGNORE_KUBERNETES_VERSION_ANNOTATION,
  checkDowngrade,
  selectVersionForInstall,
} from './version-selection.js';

export interface InstallPlanInput {
  pkgi: PackageInstall;
  /** Packages in the PackageInstall's namespace. */
  namespaced: readonly Package[];
  /** Packages in the global packaging namespace. */
  global: readonly Package[];
  /** Annotations of the PackageInstall's Namespace (exclude-global-packages). */
  namespaceAnnotations: Readonly<Record<string, string>> | undefined;
  globalNamespace: string;
  /** The App of the same name, if it exists. */
  app: App | undefined;
  /** Placeholder Secrets in the namespace whose ownerReferences name this PackageInstall's uid. */
  ownedPlaceholders: readonly string[];
  kubernetesVersion?: string | undefined;
  defaultSyncPeriod?: string | undefined;
}

export type AppChange = 'create' | 'update' | 'none';

export interface InstallPlan {
  status: StatusDecision;
  /** status.version and status.lastAttemptedVersion to report. */
  version: string | undefined;
  lastAttemptedVersion: string | undefined;
  /** Present when the App is to be created or kept in line with the Package. */
  apply?: {
    app: App;
    change: AppChange;
    /** Placeholder Secrets to ensure exist (create-only), in stage order. */
    placeholders: string[];
    /** Placeholders of this PackageInstall no stage uses any more. */
    stalePlaceholders: string[];
  };
  warnings: FetchSecretWarning[];
}

/** True when the App's controller ownerReference is the PackageInstall with this uid. */
export function isControlledBy(app: App, uid: string | undefined): boolean {
  const ref = (app.metadata?.ownerReferences ?? []).find((r) => r.controller === true);
  return ref !== undefined && uid !== undefined && uid !== '' && ref.uid === uid;
}

/** Message when an App of the PackageInstall's name exists and another controller (or none) owns it. */
export function foreignAppMessage(app: App): string {
  const ns = app.metadata?.namespace ?? '';
  const name = app.metadata?.name ?? '';
  const ref = (app.metadata?.ownerReferences ?? []).find((r) => r.controller === true);
  const owner = ref ? `it is controlled by ${ref.kind} ${ref.name}` : 'it has no controller';
  return `App ${ns}/${name} already exists and is not controlled by this PackageInstall (${owner}); it is left untouched: delete it or choose another PackageInstall name`;
}

/** The Packages the PackageInstall can see: its namespace's, plus the global ones unless excluded. */
export function candidatePackages(input: InstallPlanInput): Package[] {
  return visiblePackages({
    namespace: input.pkgi.metadata?.namespace ?? '',
    namespaceAnnotations: input.namespaceAnnotations,
    globalNamespace: input.globalNamespace,
    namespaced: input.namespaced,
    global: input.global,
  });
}

/** True when selecting a version will need the Kubernetes server version. */
export function needsKubernetesVersion(pkgi: PackageInstall, candidates: readonly Package[]): boolean {
  const refName = pkgi.spec?.packageRef?.refName;
  if (!refName || IGNORE_KUBERNETES_VERSION_ANNOTATION in (pkgi.metadata?.annotations ?? {})) return false;
  return candidates.some(
    (p) =>
      p.spec?.refName === refName && (p.spec.kubernetesVersionSelection?.constraints ?? '').trim() !== '',
  );
}

/** True when the existing App differs from the desired one in what the PackageInstall manages. */
export function appDiffers(existing: App, desired: App): boolean {
  const a = existing.metadata ?? {};
  const b = desired.metadata ?? {};
  return (
    !jsonEqual(existing.spec ?? {}, desired.spec ?? {}) ||
    !jsonEqual(a.annotations ?? {}, b.annotations ?? {}) ||
    !jsonEqual(a.labels ?? {}, b.labels ?? {}) ||
    !jsonEqual(a.ownerReferences ?? [], b.ownerReferences ?? [])
  );
}

/** The object to PUT: the existing App (resourceVersion, finalizers, ...) with our metadata and spec. */
export function appForUpdate(existing: App, desired: App): App {
  const metadata = { ...(existing.metadata ?? {}) };
  metadata.annotations = desired.metadata?.annotations ?? {};
  if (desired.metadata?.labels) metadata.labels = desired.metadata.labels;
  metadata.ownerReferences = desired.metadata?.ownerReferences ?? [];
  const out: App = { ...existing, metadata, spec: desired.spec ?? {} };
  delete out.status;
  return out;
}

function failed(
  input: InstallPlanInput,
  message: string,
  usefulErrorMessage: string = message,
  warnings: FetchSecretWarning[] = [],
): InstallPlan {
  return {
    status: reconcileFailedStatus(message, usefulErrorMessage),
    version: input.pkgi.status?.version,
    lastAttemptedVersion: input.pkgi.status?.lastAttemptedVersion,
    warnings,
  };
}

/**
 * Decides one PackageInstall reconcile (not deleting):
 * values fields → version selection → downgrade guard → foreign App guard →
 * fetch secrets (annotation overrides, placeholders) → desired App → status.
 * On any failure nothing but the status is to be written, and status.version /
 * lastAttemptedVersion keep their values.
 */
export function planPackageInstall(input: InstallPlanInput): InstallPlan {
  const { pkgi } = input;
  const invalid = validatePackageInstallValues(pkgi);
  if (invalid) return failed(input, invalid);

  const selected = selectVersionForInstall(pkgi, candidatePackages(input), {
    kubernetesVersion: input.kubernetesVersion,
  });
  if (!selected.ok) return failed(input, selected.message);

  const downgrade = checkDowngrade(
    selected.version,
    pkgi.status?.lastAttemptedVersion,
    pkgi.metadata?.annotations,
  );
  if (!downgrade.ok) return failed(input, downgrade.message, downgrade.usefulErrorMessage);

  if (input.app && !isControlledBy(input.app, pkgi.metadata?.uid)) {
    return failed(input, foreignAppMessage(input.app));
  }

  const parsed = parseFetchSecretAnnotations(pkgi.metadata?.annotations);
  const plan = planFetchSecrets(
    pkgi.metadata?.name ?? '',
    selected.package.spec?.template?.spec?.fetch,
    parsed.overrides,
  );
  const warnings = [...parsed.warnings, ...plan.warnings].sort((a, b) =>
    a.annotation < b.annotation ? -1 : a.annotation > b.annotation ? 1 : 0,
  );
  const app = buildApp(pkgi, selected.package, plan, {
    existingApp: input.app,
    defaultSyncPeriod: input.defaultSyncPeriod,
  });
  const change: AppChange = !input.app ? 'create' : appDiffers(input.app, app) ? 'update' : 'none';
  const status = change === 'none' ? mirrorAppStatus({ app: input.app }) : reconcilingStatus();
  return {
    status,
    version: selected.version,
    lastAttemptedVersion: selected.version,
    apply: {
      app,
      change,
      placeholders: plan.placeholders,
      stalePlaceholders: stalePlaceholders(
        pkgi.metadata?.name ?? '',
        input.ownedPlaceholders,
        plan.placeholders,
      ),
    },
    warnings,
  };
}

/** Fields the PackageInstall passes to its App that matter for deleting it (as upstream syncs them). */
const DELETE_SYNCED_FIELDS = [
  'serviceAccountName',
  'cluster',
  'noopDelete',
  'paused',
  'canceled',
  'defaultNamespace',
] as const;

/**
 * Before deleting its App, the PackageInstall's current values of the fields
 * that govern deletion are put on the App (e.g. noopDelete set after the App
 * was built). Returns the App to PUT, or undefined when they already match.
 */
export function appSyncedForDeletion(app: App, pkgi: PackageInstall): App | undefined {
  const spec = { ...(app.spec ?? {}) } as Record<string, unknown>;
  const installSpec = (pkgi.spec ?? {}) as Record<string, unknown>;
  let changed = false;
  for (const field of DELETE_SYNCED_FIELDS) {
    const want = installSpec[field];
    const empty = want === undefined || want === null || want === '' || want === false;
    const have = spec[field];
    const haveEmpty = have === undefined || have === null || have === '' || have === false;
    if (empty && haveEmpty) continue;
    if (!empty && jsonEqual(have, want)) continue;
    if (empty) delete spec[field];
    else spec[field] = want;
    changed = true;
  }
  if (!changed) return undefined;
  const out: App = { ...app, spec };
  delete out.status;
  return out;
}

/** The PackageInstall status object for a decision (lastTransitionTime kept while the type holds). */
export function packageInstallStatus(
  prev: PackageInstallStatus | undefined,
  generation: number | undefined,
  decision: StatusDecision,
  versions: { version: string | undefined; lastAttemptedVersion: string | undefined },
  now: () => Date = () => new Date(),
): PackageInstallStatus {
  const status: PackageInstallStatus = {
    observedGeneration: generation,
    conditions: nextCondition(
      prev?.conditions,
      { type: decision.type, message: decision.message || undefined },
      now,
    ),
    friendlyDescription: decision.friendlyDescription,
  };
  if (decision.usefulErrorMessage !== '') status.usefulErrorMessage = decision.usefulErrorMessage;
  if (versions.version !== undefined) status.version = versions.version;
  if (versions.lastAttemptedVersion !== undefined)
    status.lastAttemptedVersion = versions.lastAttemptedVersion;
  return status;
}
