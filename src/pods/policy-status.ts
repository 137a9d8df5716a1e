// The status of an ImagePullSecretPolicy from what the caches show. Pure.

import type { ImagePullSecretPolicyStatus } from '../../generated/index.js';
import { commonStatus, type CommonStatus } from '../runtime/conditions.js';

/** Condition reason and Warning Event reason when a selected namespace has a Secret of secretName the policy did not create. */
export const SECRET_CONFLICT_REASON = 'SecretConflict';
/** Namespaces named in a conflict message; the rest are counted. */
export const MAX_CONFLICTS_NAMED = 10;

export interface NamespaceConflict {
  namespace: string;
  /** The policy whose placeholder holds the name, or undefined for a Secret no policy created. */
  owner: string | undefined;
}

export interface PolicyObservation {
  secretName: string;
  /** Selected namespaces. */
  namespaces: number;
  /** Selected ServiceAccounts that list secretName, in namespaces where the policy owns the placeholder. */
  serviceAccounts: number;
  /** Selected namespaces where the name is taken; the policy proceeds in all the others. */
  conflicts: readonly NamespaceConflict[];
}

/**
 * One message for every conflicting namespace, sorted, at most
 * MAX_CONFLICTS_NAMED named, e.g. `Secret regcred exists in 12 selected
 * namespaces and was not created by this policy; it is left alone there: a,
 * b (placeholder of policy other), ... and 2 more`.
 */
export function conflictMessage(secretName: string, conflicts: readonly NamespaceConflict[]): string {
  const sorted = [...conflicts].sort((a, b) =>
    a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0,
  );
  const named = sorted
    .slice(0, MAX_CONFLICTS_NAMED)
    .map((c) => (c.owner === undefined ? c.namespace : `${c.namespace} (placeholder of policy ${c.owner})`));
  const rest = sorted.length - named.length;
  const where = sorted.length === 1 ? '1 selected namespace' : `${sorted.length} selected namespaces`;
  return (
    `Secret ${secretName} exists in ${where} and was not created by this policy; it is left alone there ` +
    `(no placeholder, no ServiceAccount entry): ${named.join(', ')}${rest > 0 ? ` and ${rest} more` : ''}`
  );
}

/** The full status; ReconcileFailed (reason SecretConflict) while any selected namespace conflicts. */
export function policyStatus(
  previous: CommonStatus | undefined,
  generation: number | undefined,
  observed: PolicyObservation,
  now?: () => Date,
): ImagePullSecretPolicyStatus {
  const outcome =
    observed.conflicts.length > 0
      ? {
          type: 'ReconcileFailed' as const,
          reason: SECRET_CONFLICT_REASON,
          message: conflictMessage(observed.secretName, observed.conflicts),
        }
      : { type: 'ReconcileSucceeded' as const, reason: 'Applied', message: '' };
  return {
    ...commonStatus(previous, generation, outcome, now),
    namespaces: observed.namespaces,
    serviceAccounts: observed.serviceAccounts,
  };
}
