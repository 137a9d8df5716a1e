import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { SecretExport } from '../../../generated/index.js';
import type { NamespaceObject, SecretExportInput, SecretExportSpec, SecretInput } from '../types.js';

/** API objects mapped onto the pure modules' inputs. */
export function exportInput(obj: SecretExport): SecretExportInput {
  return {
    namespace: obj.metadata?.namespace ?? '',
    name: obj.metadata?.name ?? '',
    generation: obj.metadata?.generation,
    annotations: obj.metadata?.annotations ?? {},
    // The generated label-selector map type allows undefined values; the API never sends them.
    spec: (obj.spec ?? {}) as SecretExportSpec,
  };
}

export function secretInput(secret: V1Secret): SecretInput {
  return {
    namespace: secret.metadata?.namespace ?? '',
    name: secret.metadata?.name ?? '',
    type: secret.type ?? 'Opaque',
    data: secret.data ?? {},
    resourceVersion: secret.metadata?.resourceVersion ?? '',
  };
}

/** Namespaces are read whole: a JSONPath selector may name any field. */
export function namespaceInput(ns: V1Namespace): NamespaceObject {
  return ns as unknown as NamespaceObject;
}

/**
 * Whether an update changed anything a selector or the wildcard exclusion
 * could read (a JSONPath selector may read any field, so all but bookkeeping).
 */
export function namespaceContentChanged(before: V1Namespace, after: V1Namespace): boolean {
  const content = (ns: V1Namespace) =>
    JSON.stringify({
      ...ns,
      metadata: { ...ns.metadata, resourceVersion: undefined, managedFields: undefined },
    });
  return content(before) !== content(after);
}
