// Which Packages (and PackageMetadatas) a namespace sees: its own, plus those
// of the global packaging namespace unless the namespace opts out. A
// namespaced object with the same name hides the global one.

export const DEFAULT_GLOBAL_PACKAGING_NAMESPACE = 'kapp-controller-packaging-global';
export const EXCLUDE_GLOBAL_PACKAGES_ANNOTATION = 'kapp-controller.carvel.dev/exclude-global-packages';

interface Named {
  metadata?: { name?: string; namespace?: string } | undefined;
  spec?: { refName?: string; version?: string } | object | undefined;
}

/**
 * True when objects of the global packaging namespace are visible in `namespace`.
 * The annotation excludes them whatever its value (presence is what counts, as upstream).
 */
export function globalPackagesVisible(
  namespace: string,
  namespaceAnnotations: Readonly<Record<string, string>> | undefined,
  globalNamespace: string = DEFAULT_GLOBAL_PACKAGING_NAMESPACE,
): boolean {
  if (namespace === '' || namespace === globalNamespace) return false;
  return !(namespaceAnnotations !== undefined && EXCLUDE_GLOBAL_PACKAGES_ANNOTATION in namespaceAnnotations);
}

/**
 * True when a Package living in `packageNamespace` can matter to a
 * PackageInstall in `installNamespace` (for re-reconcile triggers). It does not
 * look at shadowing: a global Package hidden by a namespaced one still returns true.
 */
export function packageNamespaceVisibleTo(
  packageNamespace: string,
  installNamespace: string,
  installNamespaceAnnotations: Readonly<Record<string, string>> | undefined,
  globalNamespace: string = DEFAULT_GLOBAL_PACKAGING_NAMESPACE,
): boolean {
  if (packageNamespace === installNamespace) return true;
  return (
    packageNamespace === globalNamespace &&
    globalPackagesVisible(installNamespace, installNamespaceAnnotations, globalNamespace)
  );
}

export interface VisibilityInput<T extends Named> {
  /** Namespace of the PackageInstall (or of the list request). */
  namespace: string;
  /** Annotations of that Namespace object; undefined is treated as "no annotations". */
  namespaceAnnotations?: Readonly<Record<string, string>> | undefined;
  /** Global packaging namespace; defaults to kapp-controller-packaging-global. */
  globalNamespace?: string | undefined;
  /** Objects in `namespace`. */
  namespaced: readonly T[];
  /** Objects in the global namespace (ignored when not visible). */
  global: readonly T[];
}

function keyOf(obj: Named): string {
  const name = obj.metadata?.name;
  if (name) return name;
  const spec = obj.spec as { refName?: string; version?: string } | undefined;
  return `${spec?.refName ?? ''}.${spec?.version ?? ''}`;
}

/**
 * The objects visible in the namespace, sorted by name: namespaced ones, plus
 * global ones whose name no namespaced object uses. Works for Packages and
 * PackageMetadatas alike (keyed by metadata.name; refName.version when the
 * name is missing). Inputs are not modified; the returned items are the input objects.
 */
export function visiblePackages<T extends Named>(input: VisibilityInput<T>): T[] {
  const globalNamespace = input.globalNamespace ?? DEFAULT_GLOBAL_PACKAGING_NAMESPACE;
  const byName = new Map<string, T>();
  if (globalPackagesVisible(input.namespace, input.namespaceAnnotations, globalNamespace)) {
    for (const obj of input.global) byName.set(keyOf(obj), obj);
  }
  for (const obj of input.namespaced) byName.set(keyOf(obj), obj);
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, obj]) => obj);
}
