// Pod admission: which imagePullSecrets entries the ImagePullSecretPolicies
// add to a Pod being created. Pure: the webhook server reads the caches and
// hands the views in, so this module is table-tested without a cluster.

import type { ImagePullSecretPolicy } from '../../generated/index.js';
import type { JsonPatchOp } from '../runtime/api-errors.js';
import {
  policySelectsNamespace,
  policySelectsServiceAccount,
  type NamespaceView,
} from './policy-selection.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** The parts of an AdmissionReview v1 request the webhook reads. */
export interface PodCreation {
  uid: string;
  /** The Pod's namespace as the API server states it (the object may not carry it yet). */
  namespace: string;
  /** spec.serviceAccountName, else the deprecated spec.serviceAccount, else "default". */
  serviceAccountName: string;
  /** The Pod's current spec.imagePullSecrets; undefined when the field is absent. */
  imagePullSecrets: unknown[] | undefined;
}

export type ParsedReview =
  | { kind: 'pod-create'; pod: PodCreation }
  /** A valid review this webhook has nothing to do with (another operation or resource): allowed as is. */
  | { kind: 'ignore'; uid: string; reason: string }
  /** Not an AdmissionReview v1 with a request uid: no answer the API server could use. */
  | { kind: 'invalid'; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Reads an AdmissionReview v1 body (already JSON-parsed). */
export function parseAdmissionReview(body: unknown): ParsedReview {
  if (!isObject(body)) return { kind: 'invalid', reason: 'body is not a JSON object' };
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== 'AdmissionReview') {
    return { kind: 'invalid', reason: `expected ${ADMISSION_API_VERSION} AdmissionReview` };
  }
  const request = body.request;
  if (!isObject(request)) return { kind: 'invalid', reason: 'request is missing' };
  const uid = str(request.uid);
  if (!uid) return { kind: 'invalid', reason: 'request.uid is missing' };
  const kind = isObject(request.kind) ? request.kind : {};
  if (kind.group !== '' || kind.version !== 'v1' || kind.kind !== 'Pod' || request.subResource) {
    return { kind: 'ignore', uid, reason: 'not a Pod' };
  }
  if (request.operation !== 'CREATE') return { kind: 'ignore', uid, reason: 'not a CREATE' };
  const namespace = str(request.namespace);
  if (!namespace) return { kind: 'ignore', uid, reason: 'no namespace' };
  const pod = isObject(request.object) ? request.object : undefined;
  const spec = pod && isObject(pod.spec) ? pod.spec : undefined;
  if (!spec) return { kind: 'ignore', uid, reason: 'no Pod spec' };
  const serviceAccountName = str(spec.serviceAccountName) || str(spec.serviceAccount) || 'default';
  const pullSecrets = spec.imagePullSecrets;
  return {
    kind: 'pod-create',
    pod: {
      uid,
      namespace,
      serviceAccountName,
      imagePullSecrets: Array.isArray(pullSecrets) ? pullSecrets : undefined,
    },
  };
}

export type PolicyView = Pick<ImagePullSecretPolicy, 'metadata' | 'spec'>;

export interface AdmissionContext {
  /** The Pod's namespace as the cache holds it; undefined when it is not known. */
  namespace: NamespaceView | undefined;
  /**
   * Labels of the Pod's ServiceAccount; undefined when it is not known (created
   * an instant ago): then judged as having no labels.
   */
  serviceAccountLabels: Record<string, string> | undefined;
  policies: readonly PolicyView[];
  operatorNamespace: string;
}

export type PodDecision =
  | { result: 'mutated'; patch: JsonPatchOp[]; secretNames: string[] }
  | { result: 'skipped'; reason: string; secretNames: string[] };

// A DNS subdomain, as a Secret name must be; the length is checked first, so
// the pattern only ever sees short input.
const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Whether a Secret may have this name (a Pod listing another name would be refused by the API server). */
export function isValidSecretName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= 253 && SECRET_NAME.test(name);
}

/**
 * The secret names the policies want on this Pod (sorted, unique): every
 * policy that is not being deleted, whose secretName is valid, and that
 * selects the Pod's namespace and its ServiceAccount.
 */
export function wantedSecretNames(ctx: AdmissionContext): string[] {
  const namespace = ctx.namespace;
  if (!namespace) return [];
  const labels = ctx.serviceAccountLabels ?? {};
  const names = new Set<string>();
  for (const policy of ctx.policies) {
    if (policy.metadata?.deletionTimestamp) continue;
    const secretName = policy.spec?.secretName;
    if (!isValidSecretName(secretName)) continue;
    if (!policySelectsNamespace(policy, namespace, ctx.operatorNamespace)) continue;
    if (!policySelectsServiceAccount(policy, labels)) continue;
    names.add(secretName);
  }
  return [...names].sort();
}

/**
 * The JSON patch adding the missing names to spec.imagePullSecrets (the
 * array is created when absent; existing entries are kept in their order).
 */
export function decidePod(pod: Pick<PodCreation, 'imagePullSecrets'>, ctx: AdmissionContext): PodDecision {
  if (!ctx.namespace) return { result: 'skipped', reason: 'namespace not known', secretNames: [] };
  const wanted = wantedSecretNames(ctx);
  if (wanted.length === 0) return { result: 'skipped', reason: 'no policy selects the Pod', secretNames: [] };
  const present = new Set(
    (pod.imagePullSecrets ?? []).flatMap((entry) => {
      const name = isObject(entry) ? entry.name : undefined;
      return typeof name === 'string' ? [name] : [];
    }),
  );
  const missing = wanted.filter((name) => !present.has(name));
  if (missing.length === 0)
    return { result: 'skipped', reason: 'entries already present', secretNames: wanted };
  const patch: JsonPatchOp[] =
    pod.imagePullSecrets === undefined
      ? [{ op: 'add', path: '/spec/imagePullSecrets', value: missing.map((name) => ({ name })) }]
      : missing.map((name) => ({ op: 'add', path: '/spec/imagePullSecrets/-', value: { name } }));
  return { result: 'mutated', patch, secretNames: missing };
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: true;
    patchType?: 'JSONPatch';
    patch?: string;
  };
}

/** The answer: always allowed; with the patch (base64 JSON) when there is one. */
export function admissionResponse(uid: string, patch?: readonly JsonPatchOp[]): AdmissionReviewResponse {
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(patch && patch.length > 0
        ? { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
        : {}),
    },
  };
}
