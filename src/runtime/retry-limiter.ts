import { backoffDelay } from './backoff.js';

/**
 * Token bucket that hands out reservations instead of waiting: each retry
 * takes a token now and is told how long to wait for it (client-go's
 * BucketRateLimiter). A burst of failures spends the burst at once, then
 * retries are spaced at `qps` however many keys fail.
 */
export class RetryBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly qps: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token and returns the delay in ms until it is actually available. */
  reserve(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

/** Retries per second across every queue of the process, and the burst before pacing starts (client-go's). */
export const RETRY_QPS = 10;
export const RETRY_BURST = 100;
/** Per-key backoff: first retry after ~5 ms, doubling per consecutive failure, at most 5 minutes. */
export const RETRY_BASE_DELAY_MS = 5;
export const RETRY_MAX_DELAY_MS = 5 * 60_000;

/** Shared by all work queues of the process, so a storm of failing keys cannot hammer the API. */
export const processRetryBucket = new RetryBucket(RETRY_QPS, RETRY_BURST);

export interface RetryLimiterOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  bucket?: RetryBucket;
  random?: () => number;
}

/**
 * When a failed key may run again: the larger of its own exponential backoff
 * (with jitter) and the shared bucket's pace, like client-go's default
 * controller rate limiter.
 */
export class RetryLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly bucket: RetryBucket;

  constructor(private readonly options: RetryLimiterOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? RETRY_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? RETRY_MAX_DELAY_MS;
    this.bucket = options.bucket ?? processRetryBucket;
  }

  /** Counts one more failure of `key` and returns the delay before its retry. */
  when(key: string): number {
    const attempt = this.failures.get(key) ?? 0;
    this.failures.set(key, attempt + 1);
    const own = backoffDelay(attempt, this.baseDelayMs, this.maxDelayMs, this.options.random);
    return Math.max(own, this.bucket.reserve());
  }

  /** Consecutive failures of `key` (0 after a success). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The key succeeded (or is gone): its next failure starts from the base delay again. */
  forget(key: string): void {
    this.failures.delete(key);
  }
}
