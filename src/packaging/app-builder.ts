// Builds the App a PackageInstall owns from the selected Package.

import type { FetchSecretPlan } from './fetch-secrets.js';
import type {
  App,
  AppSpec,
  ObjectMeta,
  OwnerReference,
  Package,
  PackageInstall,
  TemplateStep,
  ValuesSource,
} from './types.js';
import { KAPPCTRL_API_VERSION, PACKAGING_API_VERSION, cloneJson } from './types.js';

export const PACKAGE_REF_NAME_ANNOTATION = 'packaging.carvel.dev/package-ref-name';
export const PACKAGE_VERSION_ANNOTATION = 'packaging.carvel.dev/package-version';
/** On the App: when present, the App is left exactly as it is. */
export const MANUALLY_CONTROLLED_ANNOTATION = 'ext.packaging.carvel.dev/manually-controlled';
/** On the PackageInstall: overrides helmTemplate.name / namespace of the first helmTemplate step. */
export const HELM_TEMPLATE_NAME_ANNOTATION = 'ext.packaging.carvel.dev/helm-template-name';
export const HELM_TEMPLATE_NAMESPACE_ANNOTATION = 'ext.packaging.carvel.dev/helm-template-namespace';
/** On the PackageInstall (optionally with a `.<suffix>`): Secrets added to the first ytt step's inline.pathsFrom. */
export const YTT_PATHS_FROM_SECRET_ANNOTATION = 'ext.packaging.carvel.dev/ytt-paths-from-secret-name';
/** On the PackageInstall (optionally with a `.<suffix>`): Secrets added to the first helmTemplate step's valuesFrom. */
export const HELM_VALUES_FROM_SECRET_ANNOTATION =
  'ext.packaging.carvel.dev/helm-template-values-from-secret-name';
/** On the PackageInstall: values Secrets go to ytt inline.pathsFrom (as overlays) instead of valuesFrom. */
export const YTT_DATA_VALUES_OVERLAYS_ANNOTATION = 'ext.packaging.carvel.dev/ytt-data-values-overlays';

/** Upstream's default PackageInstall sync period (kapp-controller config packageInstallDefaultSyncPeriod). */
export const DEFAULT_PACKAGE_INSTALL_SYNC_PERIOD = '10m';

export interface BuildAppOptions {
  /** syncPeriod for the App when the PackageInstall sets none (default 10m, as upstream). */
  defaultSyncPeriod?: string | undefined;
  /**
   * The App as it exists now, if any. Its labels and foreign annotations are
   * kept; with the manually-controlled annotation it is returned unchanged.
   */
  existingApp?: App | undefined;
}

/** Values sources one PackageInstall may name (the CRD's maxItems; this catches objects stored before it). */
export const MAX_PACKAGE_INSTALL_VALUES = 100;

/** Mirrors upstream's field check on spec.values: every entry needs a secretRef; at most MAX_PACKAGE_INSTALL_VALUES. */
export function validatePackageInstallValues(pkgi: PackageInstall): string | undefined {
  const count = pkgi.spec?.values?.length ?? 0;
  if (count > MAX_PACKAGE_INSTALL_VALUES) {
    return `Invalid fields: spec.values has ${count} items, more than the limit of ${MAX_PACKAGE_INSTALL_VALUES}`;
  }
  const missing = (pkgi.spec?.values ?? [])
    .map((v, i) => (v?.secretRef ? undefined : `spec.values[${i}].secretRef: Required value`))
    .filter((m): m is string => m !== undefined);
  return missing.length > 0 ? `Invalid fields: ${missing.join(', ')}` : undefined;
}

/** Secret names from an annotation key and its `.<suffix>` variants, ordered by suffix. */
export function secretNamesFromAnnotation(
  annotations: Readonly<Record<string, string>> | undefined,
  key: string,
): string[] {
  const bySuffix: [string, string][] = [];
  for (const [ann, value] of Object.entries(annotations ?? {})) {
    if (ann === key) bySuffix.push(['', value]);
    else if (ann.startsWith(`${key}.`)) bySuffix.push([ann.slice(key.length + 1), value]);
  }
  return bySuffix.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

function controllerRef(pkgi: PackageInstall): OwnerReference {
  return {
    apiVersion: pkgi.apiVersion ?? PACKAGING_API_VERSION,
    kind: pkgi.kind ?? 'PackageInstall',
    name: pkgi.metadata?.name ?? '',
    uid: pkgi.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

function applyTemplateAdditions(template: TemplateStep[], pkgi: PackageInstall): void {
  const annotations = pkgi.metadata?.annotations ?? {};
  const values: ValuesSource[] = (pkgi.spec?.values ?? [])
    .map((v) => v?.secretRef?.name)
    .filter((name): name is string => typeof name === 'string')
    // The App's valuesFrom secretRef has only a name: spec.values[].secretRef.key is not passed on (as upstream).
    .map((name) => ({ secretRef: { name } }));
  let valuesApplied = false;
  let yttPathsApplied = false;
  let helmAdditionsApplied = false;

  for (const step of template) {
    const helm = step.helmTemplate;
    if (helm) {
      if (!helmAdditionsApplied) {
        helmAdditionsApplied = true;
        const name = annotations[HELM_TEMPLATE_NAME_ANNOTATION];
        if (name !== undefined) helm.name = name;
        const namespace = annotations[HELM_TEMPLATE_NAMESPACE_ANNOTATION];
        if (namespace !== undefined) helm.namespace = namespace;
        for (const secret of secretNamesFromAnnotation(annotations, HELM_VALUES_FROM_SECRET_ANNOTATION)) {
          helm.valuesFrom = [...(helm.valuesFrom ?? []), { secretRef: { name: secret } }];
        }
      }
      if (!valuesApplied) {
        valuesApplied = true;
        if (values.length > 0) helm.valuesFrom = [...(helm.valuesFrom ?? []), ...values];
      }
    }
    const ytt = step.ytt;
    if (ytt) {
      if (!yttPathsApplied) {
        yttPathsApplied = true;
        for (const secret of secretNamesFromAnnotation(annotations, YTT_PATHS_FROM_SECRET_ANNOTATION)) {
          ytt.inline = ytt.inline ?? {};
          ytt.inline.pathsFrom = [...(ytt.inline.pathsFrom ?? []), { secretRef: { name: secret } }];
        }
      }
      if (!valuesApplied) {
        valuesApplied = true;
        if (values.length > 0) {
          if (YTT_DATA_VALUES_OVERLAYS_ANNOTATION in annotations) {
            ytt.inline = ytt.inline ?? {};
            ytt.inline.pathsFrom = [
              ...(ytt.inline.pathsFrom ?? []),
              ...values.map((v) => ({ secretRef: { name: v.secretRef?.name ?? '' } })),
            ];
          } else {
            ytt.valuesFrom = [...(ytt.valuesFrom ?? []), ...values];
          }
        }
      }
    }
  }
}

const COPIED_FIELDS = [
  'serviceAccountName',
  'noopDelete',
  'paused',
  'canceled',
  'cluster',
  'defaultNamespace',
] as const;

/**
 * The App for a PackageInstall and its selected Package. Inputs are deep-cloned,
 * never mutated; equal inputs give equal output.
 *
 * - metadata: PackageInstall name/namespace, controller ownerReference to it,
 *   annotations package-ref-name and package-version.
 * - spec: the Package's template.spec; then serviceAccountName, noopDelete,
 *   paused, canceled, cluster, defaultNamespace taken from the PackageInstall
 *   (the template's own value is dropped when the PackageInstall sets none, as
 *   upstream overwrites them unconditionally); syncPeriod from the
 *   PackageInstall or the default; fetch from the plan.
 * - template: values Secrets appended to valuesFrom of the first ytt or
 *   helmTemplate step, plus the ext.packaging.carvel.dev helm/ytt annotations.
 */
export function buildApp(
  pkgi: PackageInstall,
  pkg: Package,
  plan: Pick<FetchSecretPlan, 'fetch'>,
  options: BuildAppOptions = {},
): App {
  const existing = options.existingApp;
  if (existing?.metadata?.annotations && MANUALLY_CONTROLLED_ANNOTATION in existing.metadata.annotations) {
    return cloneJson(existing);
  }

  const installSpec = cloneJson(pkgi.spec ?? {});
  const spec: AppSpec = cloneJson(pkg.spec?.template?.spec ?? {});

  for (const field of COPIED_FIELDS) {
    const value = installSpec[field];
    if (value === undefined || value === null || value === '') delete spec[field];
    else (spec as Record<string, unknown>)[field] = value;
  }
  spec.syncPeriod =
    installSpec.syncPeriod || options.defaultSyncPeriod || DEFAULT_PACKAGE_INSTALL_SYNC_PERIOD;
  spec.fetch = cloneJson(plan.fetch);
  if (spec.template) applyTemplateAdditions(spec.template, pkgi);

  const ref = controllerRef(pkgi);
  const metadata: ObjectMeta = {
    name: pkgi.metadata?.name ?? '',
    namespace: pkgi.metadata?.namespace ?? '',
  };
  if (existing?.metadata?.labels && Object.keys(existing.metadata.labels).length > 0) {
    metadata.labels = cloneJson(existing.metadata.labels);
  }
  metadata.annotations = {
    ...cloneJson(existing?.metadata?.annotations ?? {}),
    [PACKAGE_REF_NAME_ANNOTATION]: pkg.spec?.refName ?? '',
    [PACKAGE_VERSION_ANNOTATION]: pkg.spec?.version ?? '',
  };
  metadata.ownerReferences = [
    ...cloneJson(existing?.metadata?.ownerReferences ?? []).filter(
      (r) => r.uid !== ref.uid && r.controller !== true,
    ),
    ref,
  ];

  return { apiVersion: KAPPCTRL_API_VERSION, kind: 'App', metadata, spec };
}
