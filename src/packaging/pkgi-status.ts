// PackageInstall status decisions: mirroring the owned App, and the shared
// single-condition status shape (type, message, usefulErrorMessage,
// friendlyDescription).

import { APP_PAUSED_DESCRIPTION } from './run-status.js';
import type { App, Condition } from './types.js';
import { SEE_USEFUL_ERROR_MESSAGE } from './version-selection.js';

export type ConditionType =
  'Reconciling' | 'ReconcileSucceeded' | 'ReconcileFailed' | 'Deleting' | 'DeleteFailed';

export interface StatusDecision {
  type: ConditionType;
  /** conditions[0].message ('' when none). */
  message: string;
  usefulErrorMessage: string;
  friendlyDescription: string;
}

const FRIENDLY_MAX = 80;

/**
 * `<prefix>: <first line of message>`, the first line cut to 80 characters +
 * "..."; "..." is also added when the message had more lines. (Our
 * reading; upstream cuts the whole string, prefix included, at 80.)
 */
export function friendlyError(prefix: string, message: string): string {
  const [first = '', ...rest] = message.split('\n');
  if (first.length > FRIENDLY_MAX) return `${prefix}: ${first.slice(0, FRIENDLY_MAX)}...`;
  return rest.length > 0 ? `${prefix}: ${first}...` : `${prefix}: ${first}`;
}

export function reconcilingStatus(): StatusDecision {
  return { type: 'Reconciling', message: '', usefulErrorMessage: '', friendlyDescription: 'Reconciling' };
}

export function reconcileSucceededStatus(): StatusDecision {
  return {
    type: 'ReconcileSucceeded',
    message: '',
    usefulErrorMessage: '',
    friendlyDescription: 'Reconcile succeeded',
  };
}

/** A failed reconcile; usefulErrorMessage defaults to the message itself. */
export function reconcileFailedStatus(message: string, usefulErrorMessage: string = message): StatusDecision {
  return {
    type: 'ReconcileFailed',
    message,
    usefulErrorMessage,
    friendlyDescription: friendlyError('Reconcile failed', message),
  };
}

export function deletingStatus(): StatusDecision {
  return { type: 'Deleting', message: '', usefulErrorMessage: '', friendlyDescription: 'Deleting' };
}

export function deleteFailedStatus(message: string, usefulErrorMessage: string = message): StatusDecision {
  return {
    type: 'DeleteFailed',
    message,
    usefulErrorMessage,
    friendlyDescription: friendlyError('Delete failed', message),
  };
}

function hasCondition(app: App, type: ConditionType): boolean {
  return (app.status?.conditions ?? []).some((c) => c.type === type && c.status !== 'False');
}

export interface MirrorInput {
  /** The owned App; undefined/null when it does not exist (yet, or any more). */
  app: App | null | undefined;
  /** The PackageInstall has a deletionTimestamp. */
  deleting?: boolean | undefined;
}

/**
 * PackageInstall status from its App.
 *
 * Not deleting:
 * - no App yet, App generation ≠ status.observedGeneration, App Reconciling,
 *   or an App without a known outcome → Reconciling;
 * - App ReconcileSucceeded → ReconcileSucceeded;
 * - App ReconcileFailed → ReconcileFailed, message
 *   `Error (see .status.usefulErrorMessage for details)`, usefulErrorMessage the App's;
 * - App paused or canceled (and its spec observed) → the same condition, with
 *   friendlyDescription `Canceled/paused`.
 *
 * Deleting: App DeleteFailed → DeleteFailed (same message shape), otherwise
 * Deleting (also before the App shows Deleting, where upstream leaves the old
 * condition in place).
 */
export function mirrorAppStatus(input: MirrorInput): StatusDecision {
  const { app } = input;
  if (input.deleting) {
    if (app && hasCondition(app, 'DeleteFailed')) {
      return deleteFailedStatus(SEE_USEFUL_ERROR_MESSAGE, app.status?.usefulErrorMessage ?? '');
    }
    return deletingStatus();
  }
  if (!app) return reconcilingStatus();
  const generation = app.metadata?.generation;
  const observed = app.status?.observedGeneration;
  if (generation !== undefined && generation !== observed) return reconcilingStatus();
  const outcome = appOutcome(app);
  // Beyond upstream (whose PackageInstall keeps the App's last outcome text): a
  // paused or canceled App that has observed its spec shows as such here too.
  if (app.spec?.paused === true || app.spec?.canceled === true) {
    return { ...outcome, friendlyDescription: APP_PAUSED_DESCRIPTION };
  }
  return outcome;
}

function appOutcome(app: App): StatusDecision {
  // Same order as upstream: an App still marked Reconciling wins over a stale outcome.
  if (hasCondition(app, 'Reconciling')) return reconcilingStatus();
  if (hasCondition(app, 'ReconcileSucceeded')) return reconcileSucceededStatus();
  if (hasCondition(app, 'ReconcileFailed')) {
    return reconcileFailedStatus(SEE_USEFUL_ERROR_MESSAGE, app.status?.usefulErrorMessage ?? '');
  }
  return reconcilingStatus();
}

/** The single condition to write for a decision. */
export function conditionsFor(decision: StatusDecision): Condition[] {
  const condition: Condition = { type: decision.type, status: 'True' };
  if (decision.message !== '') condition.message = decision.message;
  return [condition];
}
