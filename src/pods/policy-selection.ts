// Which namespaces and ServiceAccounts an ImagePullSecretPolicy selects. Pure,
// shared by the policy controller (placeholders, ServiceAccount entries) and the
// Pod admission webhook, so both always agree.

import type { ImagePullSecretPolicy } from '../../generated/index.js';
import { labelSelectorMatches } from '../sharing/label-selector.js';
import type { LabelSelector } from '../sharing/types.js';

/** The label every namespace carries with its own name (set by the API server). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Namespaces a policy reaches only when its selector names them. */
export function isProtectedNamespace(namespace: string, operatorNamespace: string): boolean {
  return namespace === 'kube-system' || namespace === operatorNamespace;
}

/**
 * True when the selector names `namespace` explicitly: matchLabels
 * `kubernetes.io/metadata.name: <namespace>`, or a matchExpressions item on that
 * key with operator In listing it. A broad selector ({} or team=a) never does.
 */
export function selectorNamesNamespace(selector: LabelSelector | undefined, namespace: string): boolean {
  if (!selector) return false;
  if (selector.matchLabels?.[NAMESPACE_NAME_LABEL] === namespace) return true;
  return (selector.matchExpressions ?? []).some(
    (e) => e.key === NAMESPACE_NAME_LABEL && e.operator === 'In' && (e.values ?? []).includes(namespace),
  );
}

export interface NamespaceView {
  name: string;
  labels: Record<string, string>;
}

/** Whether the policy selects the namespace (see the CRD's namespaceSelector description). */
export function policySelectsNamespace(
  policy: Pick<ImagePullSecretPolicy, 'spec'>,
  namespace: NamespaceView,
  operatorNamespace: string,
): boolean {
  const selector = policy.spec.namespaceSelector as LabelSelector | undefined;
  if (
    isProtectedNamespace(namespace.name, operatorNamespace) &&
    !selectorNamesNamespace(selector, namespace.name)
  ) {
    return false;
  }
  // The API server may not have set the name label yet on a namespace read from an old cache.
  const labels = { ...namespace.labels, [NAMESPACE_NAME_LABEL]: namespace.name };
  return labelSelectorMatches(selector ?? {}, labels);
}

/** Whether the policy selects a ServiceAccount with these labels (in a selected namespace). */
export function policySelectsServiceAccount(
  policy: Pick<ImagePullSecretPolicy, 'spec'>,
  serviceAccountLabels: Record<string, string>,
): boolean {
  const selector = policy.spec.serviceAccountSelector as LabelSelector | undefined;
  return labelSelectorMatches(selector ?? {}, serviceAccountLabels);
}
