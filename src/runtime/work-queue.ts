import type { Logger } from './logger.js';
import { RetryLimiter, type RetryBucket } from './retry-limiter.js';

/** What a reconcile asks of the queue after it returns normally. */
export interface ReconcileResult {
  /** Reconcile this key again after the delay (e.g. a syncPeriod), even without events. */
  requeueAfterMs?: number;
}

export interface WorkQueueOptions {
  name: string;
  concurrency: number;
  handler: (key: string) => Promise<ReconcileResult | void>;
  logger: Logger;
  /** First retry delay after a failure; doubles per consecutive failure of the same key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
  /** Paces retries across queues; the process-wide bucket by default. */
  retryBucket?: RetryBucket;
  /**
   * Errors that only mean the reconcile read a cache older than the object
   * (a conflict): retried like failures, but logged at debug and not counted
   * as failures.
   */
  isStaleRead?: (err: unknown) => boolean;
  /**
   * Errors that mean the API server did not answer at all: their retries also
   * run at once when retryUnreachableNow() is called (the server is back).
   */
  isUnreachable?: (err: unknown) => boolean;
}

/** retryUnreachableNow() runs at most this often, so a flapping API server cannot turn it into a loop. */
export const UNREACHABLE_RETRY_MIN_INTERVAL_MS = 1_000;

/** How a reconcile ended, in controller-runtime's words. */
export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after';

/** Metric hooks (controller-runtime's and client-go's work-queue metrics); all optional. */
export interface WorkQueueObserver {
  /** A key newly queued or newly marked dirty (coalesced adds are not reported). */
  added(): void;
  /** A retry scheduled after a failed or stale reconcile. */
  retried(): void;
  /** A worker took a key that waited this long in the queue. */
  started(queuedSeconds: number): void;
  /** A reconcile ended. */
  finished(workSeconds: number, outcome: ReconcileOutcome): void;
}

export interface WorkQueueStats {
  added: number;
  processed: number;
  failures: number;
  retries: number;
  /** Reconciles that met a newer object than the cache had (retried, not failures). */
  staleReads: number;
}

/**
 * A keyed work queue in the spirit of client-go's: a key is queued at most
 * once however many events arrive (coalescing); a key is never processed by
 * two workers at once (an add while it runs marks it dirty and it runs again
 * afterwards); failures are logged and retried with per-key exponential
 * backoff and jitter, paced by a bucket shared by every queue of the process
 * (RetryLimiter); concurrency is bounded. Keys added from an informer event
 * start only once the event's dispatch has returned, so every handler of
 * that event (index and reference bookkeeping included) has run first.
 */
export class WorkQueue {
  readonly stats: WorkQueueStats = { added: 0, processed: 0, failures: 0, retries: 0, staleReads: 0 };
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** When each queued key was queued, and when each running key started (performance.now()). */
  private readonly queuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private observer: WorkQueueObserver | undefined;
  private readonly dirty = new Set<string>();
  private readonly retryLimiter: RetryLimiter;
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  /** Keys whose delayed retry follows a failure to reach the API server. */
  private readonly waitingForApi = new Set<string>();
  private lastUnreachableRetry = -Infinity;
  private running = false;
  private pumpScheduled = false;
  private shuttingDown = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: WorkQueueOptions) {
    this.retryLimiter = new RetryLimiter({
      baseDelayMs: options.baseDelayMs,
      maxDelayMs: options.maxDelayMs,
      random: options.random,
      bucket: options.retryBucket,
    });
  }

  get name(): string {
    return this.options.name;
  }

  get length(): number {
    return this.queue.length;
  }

  get concurrency(): number {
    return this.options.concurrency;
  }

  /** Reconciles running now. */
  get active(): number {
    return this.processing.size;
  }

  /** Seconds each running reconcile has been running so far (client-go's unfinished work). */
  runningSeconds(now = performance.now()): number[] {
    return [...this.startedAt.values()].map((at) => (now - at) / 1000);
  }

  /** Reports adds, retries and reconcile timings to `observer` (one observer; the last set wins). */
  observe(observer: WorkQueueObserver): void {
    this.observer = observer;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    this.stats.added += 1;
    if (this.processing.has(key)) {
      if (!this.dirty.has(key)) this.observer?.added();
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.observer?.added();
    this.enqueue(key);
  }

  private enqueue(key: string): void {
    this.queued.add(key);
    this.queuedAt.set(key, performance.now());
    this.queue.push(key);
    this.schedulePump();
  }

  /** Adds the key after `ms`; an earlier pending delayed add for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /**
   * The API server is reachable again: keys waiting out a retry delay after
   * it did not answer run now instead of when the shared retry pace would let
   * them (during an outage that pace schedules every failing key far ahead:
   * 1,000 keys at 10 retries/s wait up to 100 s). Their failure counts stay,
   * so a key that fails again backs off further.
   */
  retryUnreachableNow(now = performance.now()): number {
    if (this.shuttingDown || now - this.lastUnreachableRetry < UNREACHABLE_RETRY_MIN_INTERVAL_MS) return 0;
    this.lastUnreachableRetry = now;
    let retried = 0;
    for (const key of this.waitingForApi) {
      const pending = this.delayed.get(key);
      if (!pending) continue;
      clearTimeout(pending.timer);
      this.delayed.delete(key);
      this.add(key);
      retried += 1;
    }
    this.waitingForApi.clear();
    return retried;
  }

  /** Number of consecutive failures of a key (0 after a success). */
  failuresOf(key: string): number {
    return this.retryLimiter.failuresOf(key);
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Stops taking keys, drops delayed adds, and waits for in-flight reconciles to finish. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.running = false;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.waitingForApi.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.queuedAt.clear();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves once nothing is queued or running (delayed adds not counted). For tests and benchmarks. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Starts queued keys after the current synchronous dispatch: an add from the
   * first of several handlers of an event must not reconcile before the
   * others ran.
   */
  private schedulePump(): void {
    if (this.pumpScheduled || !this.running) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running) return;
    while (this.processing.size < this.options.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      const now = performance.now();
      this.observer?.started((now - (this.queuedAt.get(key) ?? now)) / 1000);
      this.queuedAt.delete(key);
      this.startedAt.set(key, now);
      this.processing.add(key);
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    let outcome: ReconcileOutcome = 'success';
    try {
      this.waitingForApi.delete(key);
      const result = await this.options.handler(key);
      this.retryLimiter.forget(key);
      if (result?.requeueAfterMs !== undefined) outcome = 'requeue_after';
      // A sync period is not a retry: it is not paced by the retry bucket.
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const delay = Math.max(this.retryLimiter.when(key), retryAfterMs(err));
      const details = {
        queue: this.options.name,
        key,
        attempt: this.retryLimiter.failuresOf(key),
        retryInMs: delay,
        error: errorMessage(err),
      };
      if (this.options.isStaleRead?.(err)) {
        this.stats.staleReads += 1;
        outcome = 'requeue';
        this.options.logger.debug('object changed since it was cached; reconciling again', details);
      } else {
        this.stats.failures += 1;
        outcome = 'error';
        this.options.logger.error('reconcile failed; will retry', details);
      }
      this.stats.retries += 1;
      this.observer?.retried();
      this.addAfter(key, delay);
      if (this.options.isUnreachable?.(err)) this.waitingForApi.add(key);
    } finally {
      this.stats.processed += 1;
      const started = this.startedAt.get(key) ?? performance.now();
      this.startedAt.delete(key);
      this.processing.delete(key);
      this.observer?.finished((performance.now() - started) / 1000, outcome);
      // Already counted as an add when it was marked dirty.
      if (this.dirty.delete(key) && !this.shuttingDown) {
        this.stats.added += 1;
        if (!this.queued.has(key)) this.enqueue(key);
      }
      this.pump();
      if (this.processing.size === 0 && (this.queue.length === 0 || !this.running)) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }
}

/** The wait a server asked for (an error carrying `retryAfterMs`, e.g. from a 429 Retry-After), or 0. */
function retryAfterMs(err: unknown): number {
  const ms = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? Math.min(ms, 10 * 60_000) : 0;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
