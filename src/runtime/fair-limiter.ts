/**
 * At most `capacity` tasks run at once; callers that must wait are served
 * round-robin by owner (e.g. a namespace), so one owner with many tasks
 * cannot keep another owner's single task waiting behind all of them.
 */
export class FairLimiter {
  /** Waiting starts per owner, in the order owners take turns. */
  private readonly waiting = new Map<string, Array<() => void>>();
  private running = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`capacity must be an integer >= 1`);
  }

  async run<T>(owner: string, work: () => Promise<T>): Promise<T> {
    if (this.running >= this.capacity) {
      // handOver() passes the freed slot straight to us, so `running` already counts this task.
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(owner);
        if (queue) queue.push(resolve);
        else this.waiting.set(owner, [resolve]);
      });
    } else {
      this.running += 1;
    }
    try {
      return await work();
    } finally {
      this.handOver();
    }
  }

  /** Tasks running now (for tests and metrics). */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    let n = 0;
    for (const queue of this.waiting.values()) n += queue.length;
    return n;
  }

  private handOver(): void {
    const next = this.waiting.entries().next().value;
    if (!next) {
      this.running -= 1;
      return;
    }
    const [owner, queue] = next;
    const start = queue.shift()!;
    this.waiting.delete(owner);
    if (queue.length > 0) this.waiting.set(owner, queue); // to the back of the round
    start();
  }
}
