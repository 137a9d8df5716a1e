/**
 * Client-side token bucket for API requests. The default must not be the
 * bottleneck (client-go's 5 QPS made a 1,000-namespace rotation take 200 s), so
 * callers pick qps/burst from flags; qps <= 0 disables limiting.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly qps: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Resolves when a token is available. */
  take(): Promise<void> {
    if (this.qps <= 0) return Promise.resolve();
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(1, ((1 - this.tokens) / this.qps) * 1000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!();
      }
      if (this.waiters.length > 0) this.schedule();
    }, wait);
  }
}

/**
 * At most `limit` requests in flight at once, served in arrival order. API
 * Priority and Fairness meters seats (requests in flight), so this bounds
 * what the whole process can take from its priority level however many
 * workers are busy; limit <= 0 disables it.
 */
export class InFlightLimit {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.active;
  }

  /** Resolves with the release function once a slot is free. */
  async acquire(): Promise<() => void> {
    if (this.limit > 0 && this.active >= this.limit) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    } else {
      this.active += 1;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so `active` stays counted.
      if (next) next();
      else this.active -= 1;
    };
  }
}
