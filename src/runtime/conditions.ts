/** The status shape shared by every kind here (upstream Carvel keeps exactly one condition). */
export type ConditionType =
  'Reconciling' | 'ReconcileSucceeded' | 'ReconcileFailed' | 'Deleting' | 'DeleteFailed';

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface CommonStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  friendlyDescription?: string;
  usefulErrorMessage?: string;
}

const FRIENDLY_PREFIX: Record<ConditionType, string> = {
  Reconciling: 'Reconciling',
  ReconcileSucceeded: 'Reconcile succeeded',
  ReconcileFailed: 'Reconcile failed',
  Deleting: 'Deleting',
  DeleteFailed: 'Delete failed',
};

/**
 * Longest message kept in a condition, usefulErrorMessage or other status
 * text. An error built from many inputs (every bad repository entry, every
 * skipped registry) can grow without bound; cut it so status writes always
 * fit (a Kubernetes object is at most ~1.5 MiB) and stay readable.
 */
export const MAX_MESSAGE_CHARS = 10 * 1024;

/**
 * `text` when it has at most `max` characters, else its start and a marker
 * saying how much was cut, `… (N more characters)`, at most `max` in all. Never splits a UTF-16
 * surrogate pair (the API server would store U+FFFD instead, and the next
 * comparison would see a change).
 */
export function truncateMessage(text: string, max: number = MAX_MESSAGE_CHARS): string {
  if (text.length <= max) return text;
  // The marker counts against `max`; N is at most text.length, so this bounds its width.
  let cut = Math.max(0, max - ` (${text.length} more characters)`.length - 1);
  const last = text.charCodeAt(cut - 1);
  if (cut > 0 && last >= 0xd800 && last <= 0xdbff) cut -= 1;
  return `${text.slice(0, cut)}… (${text.length - cut} more characters)`;
}

/**
 * A copy of a status with every string longer than MAX_MESSAGE_CHARS
 * truncated. Applied before comparing with the stored status, so a steady
 * long message compares equal and writes nothing.
 */
export function fitStatus<T>(status: T, max: number = MAX_MESSAGE_CHARS): T {
  const fit = (value: unknown): unknown => {
    if (typeof value === 'string') return truncateMessage(value, max);
    if (Array.isArray(value)) return value.map(fit);
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = fit(v);
      return out;
    }
    return value;
  };
  return fit(status) as T;
}

/** First line of an error, cut at 80 characters; "..." marks that something was cut or more lines follow. */
export function shortenError(message: string): string {
  const [first = '', ...rest] = message.split('\n');
  if (first.length > 80) return `${first.slice(0, 80)}...`;
  return rest.length > 0 ? `${first}...` : first;
}

export function friendlyDescription(type: ConditionType, message?: string): string {
  const prefix = FRIENDLY_PREFIX[type];
  if ((type === 'ReconcileFailed' || type === 'DeleteFailed') && message) {
    return `${prefix}: ${shortenError(message)}`;
  }
  return prefix;
}

/**
 * The single condition for the next status. lastTransitionTime is kept while
 * type and status stay the same, so a steady state writes nothing new.
 */
export function nextCondition(
  previous: Condition[] | undefined,
  next: { type: ConditionType; reason?: string; message?: string },
  now: () => Date = () => new Date(),
): Condition[] {
  const prev = previous?.length === 1 ? previous[0] : undefined;
  const unchanged = prev && prev.type === next.type && prev.status === 'True';
  const condition: Condition = { type: next.type, status: 'True' };
  if (next.reason) condition.reason = next.reason;
  if (next.message) condition.message = truncateMessage(next.message);
  condition.lastTransitionTime =
    unchanged && prev.lastTransitionTime ? prev.lastTransitionTime : rfc3339(now());
  return [condition];
}

/** Kubernetes accepts second precision for metav1.Time; keep that so round-trips compare equal. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Builds the common status for a reconcile outcome. */
export function commonStatus(
  previous: CommonStatus | undefined,
  generation: number | undefined,
  outcome: { type: ConditionType; reason?: string; message?: string; usefulErrorMessage?: string },
  now?: () => Date,
): CommonStatus {
  const status: CommonStatus = {
    observedGeneration: generation,
    conditions: nextCondition(previous?.conditions, outcome, now),
    friendlyDescription: friendlyDescription(outcome.type, outcome.message),
  };
  const useful =
    outcome.usefulErrorMessage ?? (outcome.type === 'ReconcileFailed' ? outcome.message : undefined);
  if (useful) status.usefulErrorMessage = truncateMessage(useful);
  return status;
}

/** Deep equality on JSON values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}
