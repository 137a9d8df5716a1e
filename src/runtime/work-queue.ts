import { backoffDelay } from './backoff.js';
import type { Logger } from './logger.js';

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
}

export interface WorkQueueStats {
  added: number;
  processed: number;
  failures: number;
  retries: number;
}

/**
 * A keyed work queue in the spirit of client-go's: a key is queued at most
 * once however many events arrive (coalescing); a key is never processed by
 * two workers at once (an add while it runs marks it dirty and it runs again
 * afterwards); failures are logged and retried with per-key exponential
 * backoff and jitter; concurrency is bounded.
 */
export class WorkQueue {
  readonly stats: WorkQueueStats = { added: 0, processed: 0, failures: 0, retries: 0 };
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private running = false;
  private shuttingDown = false;
  private idleWaiters: Array<() => void> = [];
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly options: WorkQueueOptions) {
    this.baseDelayMs = options.baseDelayMs ?? 50;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
  }

  get name(): string {
    return this.options.name;
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    this.stats.added += 1;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
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

  /** Number of consecutive failures of a key (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
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
    this.queue.length = 0;
    this.queued.clear();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves once nothing is queued or running (delayed adds not counted). For tests and benchmarks. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (!this.running) return;
    while (this.processing.size < this.options.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    try {
      const result = await this.options.handler(key);
      this.failures.delete(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const attempt = this.failures.get(key) ?? 0;
      this.failures.set(key, attempt + 1);
      this.stats.failures += 1;
      const delay = backoffDelay(attempt, this.baseDelayMs, this.maxDelayMs, this.options.random);
      this.options.logger.error('reconcile failed; will retry', {
        queue: this.options.name,
        key,
        attempt: attempt + 1,
        retryInMs: delay,
        error: errorMessage(err),
      });
      this.stats.retries += 1;
      this.addAfter(key, delay);
    } finally {
      this.stats.processed += 1;
      this.processing.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
      if (this.processing.size === 0 && (this.queue.length === 0 || !this.running)) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
