// Beyond upstream: `toNamespacesLabelSelector`, a standard Kubernetes label
// selector (matchLabels + matchExpressions, ANDed) on the namespace's labels.
// Unlike the JSONPath selector, a label with an empty value exists.

import type { LabelSelector, LabelSelectorRequirement } from './types.js';

const FIELD = 'toNamespacesLabelSelector';
const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Messages for a selector that cannot be applied; empty when it is usable. */
export function validateLabelSelector(selector: LabelSelector): string[] {
  const errors: string[] = [];
  const matchLabels = Object.entries(selector.matchLabels ?? {});
  const matchExpressions = selector.matchExpressions ?? [];
  if (matchLabels.length === 0 && matchExpressions.length === 0) {
    // Kubernetes reads `{}` as "every namespace"; that must be spelled "*" here,
    // so the wildcard exclusion annotation keeps its meaning.
    errors.push(
      `Expected ${FIELD} to have at least one matchLabels or matchExpressions entry (use "*" for every namespace)`,
    );
  }
  if (matchLabels.some(([key]) => key === ''))
    errors.push(`Expected ${FIELD}.matchLabels keys to be non-empty`);
  matchExpressions.forEach((expression, index) => {
    const where = `${FIELD}.matchExpressions[${index}]`;
    if (!expression.key) errors.push(`Expected ${where}.key to be non-empty`);
    const hasValues = (expression.values ?? []).length > 0;
    if (!OPERATORS.has(expression.operator)) {
      errors.push(`Expected ${where}.operator to be one of In, NotIn, Exists, DoesNotExist`);
    } else if ((expression.operator === 'In' || expression.operator === 'NotIn') && !hasValues) {
      errors.push(`${where}: Values must be specified when \`operator\` is 'In' or 'NotIn'`);
    } else if ((expression.operator === 'Exists' || expression.operator === 'DoesNotExist') && hasValues) {
      errors.push(`${where}: Values may not be specified when \`operator\` is 'Exists' or 'DoesNotExist'`);
    }
  });
  return errors;
}

/** Kubernetes semantics; call only on a selector validateLabelSelector accepted. */
export function labelSelectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((expression) => requirementHolds(expression, labels));
}

function requirementHolds(requirement: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const present = Object.hasOwn(labels, requirement.key);
  const value = labels[requirement.key];
  const listed = present && value !== undefined && (requirement.values ?? []).includes(value);
  switch (requirement.operator) {
    case 'In':
      return listed;
    case 'NotIn':
      return !listed; // an absent label is "not in", as in Kubernetes
    case 'Exists':
      return present;
    case 'DoesNotExist':
      return !present;
    default:
      return false;
  }
}
