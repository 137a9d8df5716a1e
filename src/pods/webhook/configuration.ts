// The MutatingWebhookConfiguration the operator keeps: what it should be, and
// whether the live object differs. Pure, table-tested.

import type { KubernetesObject } from '@kubernetes/client-node';
import { jsonEqual } from '../../runtime/conditions.js';
import { NAMESPACE_NAME_LABEL, selectorNamesNamespace } from '../policy-selection.js';
import type { LabelSelector } from '../../sharing/types.js';
import type { PolicyView } from '../admission.js';
import { WEBHOOK_SERVICE } from './certs.js';

export const WEBHOOK_CONFIGURATION_NAME = 'regcred-operator';
export const WEBHOOK_NAME = 'pods.regcred.dev';
export const WEBHOOK_PATH = '/mutate-pods';
/** Seconds the API server waits for an answer before it admits the Pod unchanged. */
export const WEBHOOK_TIMEOUT_SECONDS = 2;
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'regcred-operator';

export interface MutatingWebhook {
  name: string;
  clientConfig: {
    url?: string;
    service?: { namespace: string; name: string; path: string; port: number };
    caBundle: string;
  };
  rules: Array<{
    apiGroups: string[];
    apiVersions: string[];
    operations: string[];
    resources: string[];
    scope: string;
  }>;
  failurePolicy: string;
  matchPolicy: string;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
  reinvocationPolicy: string;
  [key: string]: unknown;
}

export interface MutatingWebhookConfiguration extends KubernetesObject {
  webhooks?: MutatingWebhook[];
}

export interface WebhookConfigInput {
  operatorNamespace: string;
  /** --webhook-url; the in-cluster Service when unset. */
  url: string | undefined;
  /** PEM bundle of the trusted CAs. */
  caBundlePem: string;
  policies: readonly PolicyView[];
}

/**
 * Namespaces the API server never sends Pods of: kube-system and the
 * operator's namespace, unless a policy names them (the admission code
 * applies the same rule; this spares their Pods the call, e.g. while the
 * webhook is down).
 */
export function excludedNamespaces(operatorNamespace: string, policies: readonly PolicyView[]): string[] {
  return [...new Set(['kube-system', operatorNamespace])]
    .filter(
      (ns) =>
        !policies.some(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            selectorNamesNamespace(p.spec?.namespaceSelector as LabelSelector | undefined, ns),
        ),
    )
    .sort();
}

/**
 * The webhook as the API server stores it: every field it would default is
 * set here, so a stored object equal to this compares equal and nothing is
 * rewritten in a loop.
 */
export function desiredWebhook(input: WebhookConfigInput): MutatingWebhook {
  const excluded = excludedNamespaces(input.operatorNamespace, input.policies);
  return {
    name: WEBHOOK_NAME,
    clientConfig: {
      ...(input.url
        ? { url: input.url }
        : {
            service: {
              namespace: input.operatorNamespace,
              name: WEBHOOK_SERVICE,
              path: WEBHOOK_PATH,
              port: 443,
            },
          }),
      caBundle: Buffer.from(input.caBundlePem).toString('base64'),
    },
    rules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ],
    failurePolicy: 'Ignore',
    matchPolicy: 'Equivalent',
    namespaceSelector:
      excluded.length > 0
        ? { matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: excluded }] }
        : {},
    objectSelector: {},
    sideEffects: 'None',
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    admissionReviewVersions: ['v1'],
    // Called again when a later webhook changed the Pod, so an entry it dropped comes back.
    reinvocationPolicy: 'IfNeeded',
  };
}

export function desiredConfiguration(input: WebhookConfigInput): MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIGURATION_NAME, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
    webhooks: [desiredWebhook(input)],
  };
}

/**
 * The object to write, or undefined when `current` already is as desired.
 * Only our label and the webhooks list are ours: other labels, annotations
 * and metadata stay as they are; any change to the webhooks (a second one, a
 * matchConditions, another failurePolicy) is put back.
 */
export function configurationUpdate(
  current: MutatingWebhookConfiguration,
  desired: MutatingWebhookConfiguration,
): MutatingWebhookConfiguration | undefined {
  const labelOk = current.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
  if (labelOk && jsonEqual(current.webhooks ?? [], desired.webhooks)) return undefined;
  return {
    ...current,
    metadata: {
      ...current.metadata,
      labels: { ...current.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
    },
    webhooks: desired.webhooks,
  };
}
