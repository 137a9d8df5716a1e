// Status of the kinds that run fetch → template → deploy (App and
// PackageRepository): the shared single-condition shape plus the stage
// sub-statuses and consecutive success/failure counters. Every builder starts
// from the previous status, so fields it does not own (e.g. deploy.kapp,
// inspect) are carried over, and lastTransitionTime stays while the
// condition type is unchanged.

import { friendlyDescription, nextCondition, rfc3339, type ConditionType } from '../runtime/conditions.js';
import type { PipelineFailure, PipelineResult, StageStatus } from './app-pipeline.js';
import type { Condition } from './types.js';

export interface RunStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  friendlyDescription?: string;
  usefulErrorMessage?: string;
  fetch?: StageStatus;
  template?: StageStatus;
  deploy?: StageStatus;
  consecutiveReconcileSuccesses?: number;
  consecutiveReconcileFailures?: number;
  [key: string]: unknown;
}

/** friendlyDescription of a paused or canceled App (upstream's exact text; kctrl looks for it). */
export const APP_PAUSED_DESCRIPTION = 'Canceled/paused';
/** friendlyDescription of a paused PackageRepository (upstream's exact text). */
export const REPOSITORY_PAUSED_DESCRIPTION = 'Paused';

type Now = () => Date;

function withCondition(
  prev: RunStatus | undefined,
  generation: number | undefined,
  type: ConditionType,
  message: string | undefined,
  now: Now,
): RunStatus {
  const next: RunStatus = { ...(prev ?? {}) };
  next.observedGeneration = generation;
  next.conditions = nextCondition(prev?.conditions, { type, message }, now);
  next.friendlyDescription = friendlyDescription(type, message);
  if (type === 'ReconcileFailed' || type === 'DeleteFailed') next.usefulErrorMessage = message;
  else delete next.usefulErrorMessage;
  return next;
}

/**
 * Paused or canceled: the generation counts as observed and the description
 * says so; the last outcome (condition, usefulErrorMessage, stages) is kept, as upstream.
 */
export function pausedStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  description: string,
): RunStatus {
  return { ...(prev ?? {}), observedGeneration: generation, friendlyDescription: description };
}

/** A run starts: Reconciling, fetch.startedAt reset. */
export function runStartedStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  now: Now,
): RunStatus {
  const next = withCondition(prev, generation, 'Reconciling', undefined, now);
  next.fetch = { ...(prev?.fetch ?? {}), startedAt: rfc3339(now()) };
  return next;
}

/** Progress within a run: the stages reported so far replace the previous ones; still Reconciling. */
export function runProgressStatus(prev: RunStatus | undefined, partial: PipelineResult): RunStatus {
  const next: RunStatus = { ...(prev ?? {}) };
  if (partial.fetch) next.fetch = partial.fetch;
  if (partial.template) next.template = partial.template;
  if (partial.deploy) next.deploy = partial.deploy;
  return next;
}

/** A run finished: ReconcileSucceeded, or ReconcileFailed with the failure; counters updated. */
export function runCompletedStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  result: PipelineResult,
  now: Now,
): RunStatus {
  const failure = result.failure;
  const next = withCondition(
    runProgressStatus(prev, result),
    generation,
    failure ? 'ReconcileFailed' : 'ReconcileSucceeded',
    failure?.message,
    now,
  );
  if (failure) {
    next.consecutiveReconcileFailures = (prev?.consecutiveReconcileFailures ?? 0) + 1;
    next.consecutiveReconcileSuccesses = 0;
  } else {
    next.consecutiveReconcileSuccesses = (prev?.consecutiveReconcileSuccesses ?? 0) + 1;
    next.consecutiveReconcileFailures = 0;
  }
  return next;
}

/**
 * A failure known before running anything (a fetch stage kind no runner can
 * perform): status.fetch records it with exitCode 1.
 */
export function fetchRejectedStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  failure: PipelineFailure,
  now: Now,
): RunStatus {
  const at = rfc3339(now());
  return runCompletedStatus(
    prev,
    generation,
    { fetch: { startedAt: at, updatedAt: at, exitCode: 1, error: failure.error }, failure },
    now,
  );
}

/**
 * True when the status already reports exactly this failure for this
 * generation: repeating it would only move timestamps, so nothing is written.
 */
export function reportsSameFailure(
  prev: RunStatus | undefined,
  generation: number | undefined,
  failure: PipelineFailure,
): boolean {
  if (!prev) return false;
  const cond = prev.conditions;
  return (
    prev.observedGeneration === generation &&
    cond?.length === 1 &&
    cond[0]?.type === 'ReconcileFailed' &&
    cond[0].message === failure.message &&
    prev.usefulErrorMessage === failure.message &&
    prev.friendlyDescription === friendlyDescription('ReconcileFailed', failure.message) &&
    (failure.phase !== 'fetch' || (prev.fetch?.error === failure.error && prev.fetch.exitCode === 1))
  );
}

export function deletingStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  now: Now,
): RunStatus {
  return withCondition(prev, generation, 'Deleting', undefined, now);
}

export function deleteFailedStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  failure: PipelineFailure,
  now: Now,
): RunStatus {
  return withCondition(prev, generation, 'DeleteFailed', failure.message, now);
}

/** A failure of the resource itself (not of a stage), e.g. a placeholder that cannot be created. */
export function reconcileFailedStatus(
  prev: RunStatus | undefined,
  generation: number | undefined,
  message: string,
  now: Now,
): RunStatus {
  const next = withCondition(prev, generation, 'ReconcileFailed', message, now);
  if (!reportsSameCondition(prev, 'ReconcileFailed', message)) {
    next.consecutiveReconcileFailures = (prev?.consecutiveReconcileFailures ?? 0) + 1;
    next.consecutiveReconcileSuccesses = 0;
  }
  return next;
}

function reportsSameCondition(prev: RunStatus | undefined, type: string, message: string): boolean {
  const c = prev?.conditions;
  return c?.length === 1 && c[0]?.type === type && c[0].message === message;
}

/** True when the last run failed in its fetch phase (a registry, TLS or credentials problem, say). */
export function fetchFailed(status: RunStatus | undefined): boolean {
  const condition = status?.conditions?.[0];
  const exitCode = status?.fetch?.exitCode;
  return condition?.type === 'ReconcileFailed' && typeof exitCode === 'number' && exitCode !== 0;
}
