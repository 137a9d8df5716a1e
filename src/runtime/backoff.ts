/** Exponential backoff with full jitter in [d/2, d], so restarts of many watches or keys spread out. */
export class Backoff {
  private attempt = 0;

  constructor(
    readonly baseMs: number,
    readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay for the next attempt; grows until `maxMs`. */
  next(): number {
    const delay = backoffDelay(this.attempt, this.baseMs, this.maxMs, this.random);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Resolves after `ms`, or early (without error) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Thrown by untilAborted when the signal aborts first. */
export class AbortedError extends Error {
  constructor() {
    super('aborted');
    this.name = 'AbortedError';
  }
}

/**
 * Settles like `promise`, or rejects with AbortedError as soon as the signal
 * aborts (the promise's own result is then dropped), so a caller that stops
 * need not wait for a slow request it cannot cancel.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new AbortedError());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => undefined);
      reject(new AbortedError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * A wake-up call shared by the watches of one API server: once one of them
 * reconnects after failures, the others end their backoff at once instead of
 * each waiting out a delay grown during the outage.
 */
export class Wakeup {
  private readonly sleepers = new Set<() => void>();
  private readonly listeners = new Set<() => void>();

  wake(): void {
    const sleepers = [...this.sleepers];
    this.sleepers.clear();
    for (const done of sleepers) done();
    for (const listener of [...this.listeners]) listener();
  }

  /** Calls `listener` on every wake() until the returned function is called. */
  onWake(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves after `ms`, when the signal aborts, or on wake(), whichever comes first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
