// Events a user reads in `kubectl describe`: a Warning when an object's
// reconcile fails (or fails differently), a Normal when it first succeeds or
// recovers. Only a change of outcome sends one, so an object that keeps
// succeeding, or keeps failing the same way, adds nothing however often it is
// reconciled.

import { createHash } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { shortenError } from './conditions.js';
import type { EventRecorder, EventType } from './events.js';

export const RECONCILE_SUCCEEDED = 'ReconcileSucceeded';
export const RECONCILE_FAILED = 'ReconcileFailed';

/** The end of a reconcile. `message` is the failure; undefined when not known (e.g. after a restart). */
export interface SettledOutcome {
  failed: boolean;
  message?: string;
}

export interface OutcomeEvent {
  type: EventType;
  reason: string;
  message: string;
}

/**
 * The Event for going from `previous` (undefined: never settled) to `next`,
 * or undefined when nothing changed for the user.
 */
export function outcomeEvent(
  previous: SettledOutcome | undefined,
  next: SettledOutcome,
  failureReason: string = RECONCILE_FAILED,
  announceFirstSuccess = true,
): OutcomeEvent | undefined {
  if (next.failed) {
    if (previous?.failed && previous.message !== undefined && previous.message === next.message) return;
    return { type: 'Warning', reason: failureReason, message: next.message || 'Reconcile failed' };
  }
  if (previous && !previous.failed) return;
  if (!previous) {
    return announceFirstSuccess
      ? { type: 'Normal', reason: RECONCILE_SUCCEEDED, message: 'Reconcile succeeded' }
      : undefined;
  }
  return {
    type: 'Normal',
    reason: RECONCILE_SUCCEEDED,
    message: previous.message
      ? `Reconcile succeeded; it had failed with: ${shortenError(previous.message)}`
      : 'Reconcile succeeded after a failure',
  };
}

interface Condition {
  type?: string;
  status?: string;
  message?: string;
}

/**
 * The settled outcome a stored status records: its single condition when that
 * is ReconcileSucceeded or ReconcileFailed (the failure text from
 * usefulErrorMessage when set, as that is what the user acts on). A run in
 * progress (Reconciling) falls back to the consecutive counters of App and
 * PackageRepository, whose message is then unknown.
 */
export function settledFromStatus(
  status:
    | {
        conditions?: readonly Condition[];
        usefulErrorMessage?: string;
        consecutiveReconcileSuccesses?: number;
        consecutiveReconcileFailures?: number;
      }
    | undefined,
): SettledOutcome | undefined {
  const condition = status?.conditions?.find((c) => c.status === 'True');
  if (condition?.type === 'ReconcileSucceeded') return { failed: false };
  if (condition?.type === 'ReconcileFailed')
    return { failed: true, message: status?.usefulErrorMessage || condition.message || '' };
  if ((status?.consecutiveReconcileFailures ?? 0) > 0) return { failed: true };
  if ((status?.consecutiveReconcileSuccesses ?? 0) > 0) return { failed: false };
  return undefined;
}

/** A placeholder's `secretgen.carvel.dev/status` annotation (JSON with one condition), read leniently. */
export function settledFromStatusAnnotation(annotation: string | undefined): SettledOutcome | undefined {
  if (!annotation) return undefined;
  try {
    const parsed = JSON.parse(annotation) as { conditions?: unknown };
    if (!Array.isArray(parsed.conditions)) return undefined;
    return settledFromStatus({ conditions: parsed.conditions as Condition[] });
  } catch {
    return undefined;
  }
}

interface Remembered {
  uid: string;
  failed: boolean;
  /** A digest of the failure, so thousands of failing objects do not hold their full texts. */
  digest?: string;
  /** What a recovery Event quotes. */
  short?: string;
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64');

/**
 * Sends outcome Events for one controller. The last outcome each object
 * reached in this process wins over what its (possibly lagging) cached status
 * says, so a cache that has not caught up with our own status write does not
 * repeat an Event.
 */
export class OutcomeEvents {
  private readonly last = new Map<string, Remembered>();

  /**
   * `announceFirstSuccess: false` for objects that exist by the thousand
   * (placeholders): a Normal Event each on the first fill would double the
   * writes of a fan-out, so only recoveries are announced.
   */
  constructor(
    private readonly events: EventRecorder,
    private readonly options: { announceFirstSuccess: boolean } = { announceFirstSuccess: true },
  ) {}

  /**
   * Call after the outcome's status is written (or found already written): a
   * write that throws sends nothing, and the retry reports it.
   */
  report(
    key: string,
    obj: KubernetesObject,
    previousFromStatus: SettledOutcome | undefined,
    next: SettledOutcome,
    failureReason?: string,
  ): void {
    const uid = obj.metadata?.uid ?? '';
    const remembered = this.last.get(key);
    const previous = remembered?.uid === uid ? remembered : undefined;
    const event = previous
      ? outcomeEventFromMemory(previous, next, failureReason)
      : outcomeEvent(previousFromStatus, next, failureReason, this.options.announceFirstSuccess);
    this.last.set(key, {
      uid,
      failed: next.failed,
      ...(next.failed && next.message !== undefined
        ? { digest: digest(next.message), short: shortenError(next.message) }
        : {}),
    });
    if (event) this.events.event(obj, event.type, event.reason, event.message);
  }

  /** The object is gone. */
  forget(key: string): void {
    this.last.delete(key);
  }
}

function outcomeEventFromMemory(
  previous: Remembered,
  next: SettledOutcome,
  failureReason: string | undefined,
): OutcomeEvent | undefined {
  const sameFailure =
    previous.failed &&
    next.failed &&
    previous.digest !== undefined &&
    next.message !== undefined &&
    previous.digest === digest(next.message);
  if (sameFailure) return undefined;
  // The short text stands in for the message: outcomeEvent only quotes it, shortened again.
  return outcomeEvent(
    previous.failed ? { failed: true, message: previous.short } : { failed: false },
    next,
    failureReason,
  );
}
