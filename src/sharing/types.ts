// Plain structural inputs of the sharing decisions. Callers map their API
// objects onto these, so the decisions never depend on generated types.

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A whole Namespace object; the JSONPath selector may read any field of it. */
export interface NamespaceObject {
  metadata: {
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

export type NamespaceInput = NamespaceInfo | NamespaceObject;

export interface SelectorMatchField {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface SecretExportSpec {
  toNamespace?: string;
  toNamespaces?: string[];
  dangerousToNamespacesSelector?: SelectorMatchField[];
  /** Beyond upstream: a Kubernetes label selector on the namespace. */
  toNamespacesLabelSelector?: LabelSelector;
}

export interface SecretExportInput {
  namespace: string;
  name: string;
  generation?: number;
  annotations: Record<string, string>;
  spec: SecretExportSpec;
}

export interface SecretInput {
  namespace: string;
  name: string;
  type: string;
  /** base64 values, as the API returns them. */
  data: Record<string, string>;
  resourceVersion: string;
}

/** `ns/name`, the form upstream uses in statuses and for its final ordering. */
export function refString(ref: { namespace: string; name: string }): string {
  return `${ref.namespace}/${ref.name}`;
}

function isNamespaceObject(ns: NamespaceInput): ns is NamespaceObject {
  return 'metadata' in ns;
}

export function namespaceName(ns: NamespaceInput): string {
  return isNamespaceObject(ns) ? (ns.metadata.name ?? '') : ns.name;
}

export function namespaceLabels(ns: NamespaceInput): Record<string, string> {
  return (isNamespaceObject(ns) ? ns.metadata.labels : ns.labels) ?? {};
}

export function namespaceAnnotations(ns: NamespaceInput): Record<string, string> {
  return (isNamespaceObject(ns) ? ns.metadata.annotations : ns.annotations) ?? {};
}

/**
 * The object the JSONPath selector reads. From a NamespaceInfo, empty maps
 * are left out, as Go's omitempty leaves them out of the object upstream reads.
 */
export function namespaceDocument(ns: NamespaceInput): unknown {
  if (isNamespaceObject(ns)) return ns;
  const metadata: Record<string, unknown> = { name: ns.name };
  if (Object.keys(ns.labels).length > 0) metadata['labels'] = ns.labels;
  if (Object.keys(ns.annotations).length > 0) metadata['annotations'] = ns.annotations;
  return { metadata };
}

export function hasOwnKey(map: Record<string, string>, key: string): boolean {
  return Object.hasOwn(map, key);
}
