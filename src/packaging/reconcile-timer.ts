// When an App (or PackageRepository) runs its fetch → template → deploy
// again. The decision reads only the object (generation, status timestamps,
// condition, failure count), so it survives a restart: nothing is kept in
// memory between reconciles except the "forced" flag for a changed Secret.

import type { Condition } from './types.js';

export interface StageTimes {
  startedAt?: string;
  updatedAt?: string;
  [key: string]: unknown;
}

export interface TimedStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  consecutiveReconcileFailures?: number;
  fetch?: StageTimes;
  template?: StageTimes;
  deploy?: StageTimes;
  [key: string]: unknown;
}

export type TimingReason =
  'generation' | 'forced' | 'never-run' | 'interrupted' | 'period' | 'failure-backoff';

export type Timing = { due: true; reason: TimingReason } | { due: false; afterMs: number };

export interface TimingInput {
  generation: number | undefined;
  status: TimedStatus | undefined;
  /** The resource's sync period (already defaulted and raised to the minimum). */
  syncPeriodMs: number;
  now: Date;
  /** Something the last run depended on changed (e.g. a fetch Secret). */
  forced?: boolean;
  /**
   * The last failure waits for a watched input to change (e.g. a missing
   * Secret): no failure backoff, only the sync period (a change forces a run).
   */
  failureAwaitsInputChange?: boolean;
}

/** A run left in Reconciling this long ago was interrupted (process restart); run again. */
export const INTERRUPTED_AFTER_MS = 60_000;
/** Failure backoff is 2^failures seconds, capped by the sync period; the exponent is capped too. */
const MAX_BACKOFF_EXPONENT = 30;

function hasCondition(status: TimedStatus | undefined, type: string): boolean {
  return (status?.conditions ?? []).some((c) => c.type === type);
}

/** Latest timestamp the status records for a run, or undefined when it never ran. */
export function lastRunTime(status: TimedStatus | undefined): number | undefined {
  let last: number | undefined;
  for (const stage of [status?.fetch, status?.template, status?.deploy]) {
    for (const t of [stage?.startedAt, stage?.updatedAt]) {
      if (typeof t !== 'string') continue;
      const ms = Date.parse(t);
      if (!Number.isNaN(ms) && (last === undefined || ms > last)) last = ms;
    }
  }
  return last;
}

/** Delay before retrying after consecutive failures: 2^n seconds, at most the sync period. */
export function failureDelayMs(consecutiveFailures: number | undefined, syncPeriodMs: number): number {
  const n = consecutiveFailures ?? 0;
  if (n <= 0) return syncPeriodMs;
  return Math.min(2 ** Math.min(n, MAX_BACKOFF_EXPONENT) * 1000, syncPeriodMs);
}

/**
 * Whether to run now, and otherwise how long until the next run is due:
 * a spec change (generation not observed) or a forced run is due at once; a
 * resource that never ran, or whose run was interrupted, too; after a
 * failure the run repeats with exponential backoff; otherwise every sync period.
 */
export function reconcileTiming(input: TimingInput): Timing {
  const { status, now } = input;
  if (input.generation !== undefined && status?.observedGeneration !== input.generation) {
    return { due: true, reason: 'generation' };
  }
  if (input.forced) return { due: true, reason: 'forced' };
  const last = lastRunTime(status);
  if (last === undefined) return { due: true, reason: 'never-run' };
  const elapsed = now.getTime() - last;
  if (hasCondition(status, 'Reconciling') && elapsed >= INTERRUPTED_AFTER_MS) {
    return { due: true, reason: 'interrupted' };
  }
  const failed = hasCondition(status, 'ReconcileFailed') || hasCondition(status, 'DeleteFailed');
  const delay =
    failed && !input.failureAwaitsInputChange
      ? failureDelayMs(status?.consecutiveReconcileFailures, input.syncPeriodMs)
      : input.syncPeriodMs;
  if (elapsed >= delay) {
    return { due: true, reason: failed && !input.failureAwaitsInputChange ? 'failure-backoff' : 'period' };
  }
  return { due: false, afterMs: delay - elapsed };
}
