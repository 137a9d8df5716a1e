// Does a SecretExport offer its Secret to a namespace, and how? The "how"
// feeds placeholder precedence: an explicit name beats "*" and selectors.
// Namespaces are passed in; nothing here reads the API mid-match.

import { EXCLUDED_FROM_WILDCARD_ANNOTATION } from './annotations.js';
import { ALL_NAMESPACES, staticToNamespaces, validateExportSpec } from './export-rules.js';
import { parseSelectorKey, readSelectorPath } from './jsonpath.js';
import { labelSelectorMatches } from './label-selector.js';
import {
  hasOwnKey,
  namespaceAnnotations,
  namespaceDocument,
  namespaceLabels,
  namespaceName,
  type NamespaceInput,
  type SecretExportSpec,
  type SelectorMatchField,
} from './types.js';

export type MatchKind = 'explicit' | 'wildcard' | 'selector';

/** Any value, even empty, excludes the namespace from `"*"` (as upstream). */
export function isExcludedFromWildcard(namespace: NamespaceInput): boolean {
  return hasOwnKey(namespaceAnnotations(namespace), EXCLUDED_FROM_WILDCARD_ANNOTATION);
}

/**
 * How the export reaches the namespace, or undefined. An invalid export
 * reaches nothing. When several ways apply the explicit name is reported,
 * since that is the one precedence rewards.
 */
export function matchExportToNamespace(
  exportObj: { spec: SecretExportSpec },
  namespace: NamespaceInput,
): MatchKind | undefined {
  const { spec } = exportObj;
  const checked = checkedSpec(spec);
  if (!checked.valid) return undefined;
  if (checked.targets.has(namespaceName(namespace))) return 'explicit';
  if (checked.targets.has(ALL_NAMESPACES) && !isExcludedFromWildcard(namespace)) return 'wildcard';
  if (selectorMatches(spec, namespace)) return 'selector';
  return undefined;
}

/**
 * An export's validity and static targets, computed once per spec object: one
 * change matches the export against every namespace, and a placeholder
 * reconcile against every export. Specs come from informer caches, which
 * replace an object on change and never modify it, so the object is the key.
 * A Set keeps a long toNamespaces list from costing its length per namespace.
 */
const checkedSpecs = new WeakMap<SecretExportSpec, { valid: boolean; targets: ReadonlySet<string> }>();

function checkedSpec(spec: SecretExportSpec): { valid: boolean; targets: ReadonlySet<string> } {
  let checked = checkedSpecs.get(spec);
  if (checked === undefined) {
    checked = { valid: validateExportSpec(spec).length === 0, targets: new Set(staticToNamespaces(spec)) };
    checkedSpecs.set(spec, checked);
  }
  return checked;
}

function selectorMatches(spec: SecretExportSpec, namespace: NamespaceInput): boolean {
  const dangerous = spec.dangerousToNamespacesSelector ?? [];
  if (dangerous.length > 0 && dangerous.every((field) => fieldMatches(field, namespace))) return true;
  const labelSelector = spec.toNamespacesLabelSelector;
  return labelSelector !== undefined && labelSelectorMatches(labelSelector, namespaceLabels(namespace));
}

/**
 * One dangerousToNamespacesSelector entry, with upstream's semantics: the key
 * reads `""` when missing, and an empty value counts as absent for
 * Exists/DoesNotExist (In [""] therefore matches a missing key).
 */
export function fieldMatches(field: SelectorMatchField, namespace: NamespaceInput): boolean {
  const parsed = parseSelectorKey(field.key);
  if (!parsed.ok) return false;
  const value = readSelectorPath(namespaceDocument(namespace), parsed.segments);
  const values = field.values ?? [];
  switch (field.operator) {
    case 'In':
      return values.includes(value);
    case 'NotIn':
      return !values.includes(value);
    case 'Exists':
      return value !== '';
    case 'DoesNotExist':
      return value === '';
    default:
      return false;
  }
}

/**
 * Whether the export's reach depends on namespace metadata (labels,
 * annotations, or any field a JSONPath selector reads), so the controller
 * knows which exports to re-evaluate when a namespace changes.
 */
export function exportDependsOnNamespaceMetadata(exportObj: { spec: SecretExportSpec }): boolean {
  const { spec } = exportObj;
  return (
    checkedSpec(spec).targets.has(ALL_NAMESPACES) ||
    (spec.dangerousToNamespacesSelector ?? []).length > 0 ||
    spec.toNamespacesLabelSelector !== undefined
  );
}

/** True when a namespace update changes whether or how the export reaches it. */
export function namespaceUpdateChangesMatch(
  exportObj: { spec: SecretExportSpec },
  before: NamespaceInput,
  after: NamespaceInput,
): boolean {
  if (!exportDependsOnNamespaceMetadata(exportObj)) return false;
  return matchExportToNamespace(exportObj, before) !== matchExportToNamespace(exportObj, after);
}
