/**
 * Requests told by the API server to come back later (a 429 with
 * Retry-After) wait here, grouped by the Priority and Fairness level that
 * refused them.
 *
 * The server's Retry-After grows while a level keeps dropping requests (up
 * to 32 s) and shrinks only a second at a time, so a request told "32" near
 * the end of a storm would sleep long after the level is idle again. Here a
 * request that the same level serves meanwhile, sent after the level's
 * latest 429, releases the longest waiter at once: one release per served
 * request, so the retries follow the level's real capacity (like TCP's ACK
 * clock) instead of all firing on a timer, and the end of a storm is noticed
 * at the first request served after it. Without such a request nothing is
 * released early; the timer still ends every wait.
 */
export class ThrottleWaiters {
  private readonly levels = new Map<string, Level>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Waiters across all levels (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const level of this.levels.values()) n += level.waiters.size;
    return n;
  }

  /**
   * Called when a request of `level` was just throttled: resolves after `ms`,
   * or earlier when the level serves a request sent after this moment;
   * rejects when a signal aborts. Resolves with true if released early.
   */
  wait(levelKey: string, ms: number, signals: AbortSignal[]): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const aborted = signals.find((s) => s.aborted);
      if (aborted) {
        reject(abortReason(aborted));
        return;
      }
      let level = this.levels.get(levelKey);
      if (!level) this.levels.set(levelKey, (level = { waiters: new Set(), throttledAt: 0 }));
      const own = level;
      own.throttledAt = this.now();
      const finish = (early: boolean, error?: Error): void => {
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener('abort', onAbort);
        own.waiters.delete(waiter);
        if (own.waiters.size === 0 && this.levels.get(levelKey) === own) this.levels.delete(levelKey);
        if (error) reject(error);
        else resolve(early);
      };
      const onAbort = (event: Event): void => finish(false, abortReason(event.target as AbortSignal));
      const waiter: Waiter = { release: () => finish(true) };
      const timer = setTimeout(() => finish(false), ms);
      own.waiters.add(waiter);
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A request of `level`, sent at `sentAt`, was served: releases that level's
   * longest waiter, if any (never banked). A request sent before the level's
   * latest 429 proves nothing (it may have sat in the server's queue through
   * the overload) unless it was itself released early: that one carries the
   * release on, so released retries form a chain of one request at a time
   * that runs while the level serves it and stops at its first 429.
   */
  served(levelKey: string, sentAt: number, releasedEarly: boolean): void {
    const level = this.levels.get(levelKey);
    if (!level || (!releasedEarly && sentAt <= level.throttledAt)) return;
    // A Set iterates in insertion order: the first entry has waited longest.
    const first = level.waiters.values().next();
    if (!first.done) first.value.release();
  }
}

interface Level {
  waiters: Set<Waiter>;
  /** When a request of this level was last throttled. */
  throttledAt: number;
}

interface Waiter {
  release(): void;
}

export const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error('request aborted');

/** The Priority and Fairness level a response names (its UID); '' when APF did not classify it. */
export function priorityLevelOf(headers: Record<string, string | string[] | undefined>): string {
  const value = headers['x-kubernetes-pf-prioritylevel-uid'];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' ? text : '';
}
