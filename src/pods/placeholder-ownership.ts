// Which placeholder Secrets the ImagePullSecretPolicies need in one namespace,
// which existing ones are theirs, and which they must leave alone. Pure: the
// controller passes what its caches hold for the namespace.

/** Label on each placeholder a policy created: the policy's name. Only labelled Secrets are ever deleted. */
export const POLICY_LABEL = 'regcred.dev/policy';

/** A policy as the namespace sees it: one that selects the namespace and is not being deleted. */
export interface SelectingPolicy {
  name: string;
  secretName: string;
}

/** An existing Secret of the namespace, as far as ownership goes. */
export interface ExistingSecret {
  name: string;
  resourceVersion: string;
  /** Value of the regcred.dev/policy label; undefined when the Secret has none. */
  policy: string | undefined;
}

/** Why a policy cannot use its secretName in this namespace. */
export interface OwnershipConflict {
  policy: string;
  secretName: string;
  /** The policy whose label the Secret carries, or undefined for a Secret no policy created. */
  owner: string | undefined;
}

export interface NamespacePlaceholderPlan {
  /** Placeholders to create: secret name → the policy that creates it (and labels it). */
  create: Map<string, string>;
  /** Labelled placeholders no policy wants here any more. */
  remove: ExistingSecret[];
  /** policy → its secret name, for the policies that own (or are creating, or taking over) their placeholder here. */
  owned: Map<string, string>;
  /** Policies whose secretName is taken by a Secret they did not create. */
  conflicts: OwnershipConflict[];
}

/**
 * Decides placeholders for one namespace.
 *
 * `policies` are the policies selecting the namespace, oldest first: when
 * several want the same name and none has created it yet, the first one
 * creates and owns it and the others report a conflict. A Secret with the
 * name is the policy's only when it carries the policy's label. A Secret
 * labelled by a policy that no longer wants it here is about to be removed:
 * a policy waiting for that name gets it afterwards, without a conflict.
 */
export function planNamespacePlaceholders(
  policies: readonly SelectingPolicy[],
  secretNamed: (name: string) => ExistingSecret | undefined,
  labelled: readonly ExistingSecret[],
): NamespacePlaceholderPlan {
  const wanted = new Set(policies.map((p) => `${p.name}\n${p.secretName}`));
  const isWanted = (s: ExistingSecret) => s.policy !== undefined && wanted.has(`${s.policy}\n${s.name}`);
  const plan: NamespacePlaceholderPlan = { create: new Map(), remove: [], owned: new Map(), conflicts: [] };
  for (const policy of policies) {
    const existing = secretNamed(policy.secretName);
    if (existing) {
      if (existing.policy === policy.name) plan.owned.set(policy.name, policy.secretName);
      else if (existing.policy === undefined || isWanted(existing)) {
        plan.conflicts.push({ policy: policy.name, secretName: policy.secretName, owner: existing.policy });
      } else {
        // Another policy's leftover, removed below; this policy creates its own next time. Its
        // ServiceAccount entries pass to this policy meanwhile instead of being removed and added again.
        plan.owned.set(policy.name, policy.secretName);
      }
      continue;
    }
    const creator = plan.create.get(policy.secretName);
    if (creator === undefined) {
      plan.create.set(policy.secretName, policy.name);
      plan.owned.set(policy.name, policy.secretName);
    } else {
      plan.conflicts.push({ policy: policy.name, secretName: policy.secretName, owner: creator });
    }
  }
  plan.remove = labelled.filter((s) => !isWanted(s));
  return plan;
}

/** Oldest first (creation time, then name), the order in which policies claim names. */
export function byAge<T extends { name: string; createdAt: string }>(a: T, b: T): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
