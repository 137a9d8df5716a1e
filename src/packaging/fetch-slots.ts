// Who may start a fetch: at most `maxConcurrent` at once in the operator, and
// at most `perNamespace` of them from one namespace, so one tenant's slow
// fetches always leave slots for the others. Waiting namespaces are served
// round-robin: the caller keeps them in a queue, asks which one is next, and
// moves the served one to the back. Pure decisions; fetch-limiter.ts holds
// the state.

export interface SlotLimits {
  maxConcurrent: number;
  perNamespace: number;
}

/** A namespace's share: half the slots, rounded up (all of them when there is only one). */
export function namespaceShare(maxConcurrent: number): number {
  return Math.max(1, Math.ceil(maxConcurrent / 2));
}

export function slotLimits(maxConcurrent: number): SlotLimits {
  return { maxConcurrent, perNamespace: namespaceShare(maxConcurrent) };
}

function total(inUse: ReadonlyMap<string, number>): number {
  let sum = 0;
  for (const n of inUse.values()) sum += n;
  return sum;
}

/** Whether a fetch from `namespace` may start, given the slots in use per namespace. */
export function hasRoom(limits: SlotLimits, inUse: ReadonlyMap<string, number>, namespace: string): boolean {
  return total(inUse) < limits.maxConcurrent && (inUse.get(namespace) ?? 0) < limits.perNamespace;
}

/**
 * The namespace whose waiting fetch starts next: the first of `waiting`
 * (round-robin order) that has room; undefined when none may start.
 */
export function nextNamespace(
  limits: SlotLimits,
  inUse: ReadonlyMap<string, number>,
  waiting: Iterable<string>,
): string | undefined {
  if (total(inUse) >= limits.maxConcurrent) return undefined;
  for (const namespace of waiting) {
    if ((inUse.get(namespace) ?? 0) < limits.perNamespace) return namespace;
  }
  return undefined;
}
