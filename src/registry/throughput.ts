// Minimum throughput for response bodies. An idle timeout alone never fires
// for a server that sends one byte every few hundred milliseconds; this rule
// does: after a grace period, every window of the transfer must bring at
// least `minBytesPerSecond` on average, or the transfer is aborted.

export interface ThroughputRule {
  /** Average rate each window must reach; 0 turns the rule off. */
  minBytesPerSecond: number;
  /** Time after the response headers before the first window starts. */
  graceMs: number;
  /** Length of each window the average is taken over. */
  windowMs: number;
}

/** 10 KiB/s over 30 s windows after a 30 s grace period: a trickle fails within about a minute. */
export const DEFAULT_THROUGHPUT_RULE: Readonly<ThroughputRule> = Object.freeze({
  minBytesPerSecond: 10 * 1024,
  graceMs: 30_000,
  windowMs: 30_000,
});

/** `512 B/s`, `10 KiB/s`, `1.5 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
  let value = bytesPerSecond;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 ? String(Math.floor(value)) : String(Math.round(value * 10) / 10);
  return `${shown} ${units[unit]}`;
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Why a window that brought `bytes` in `windowMs` is too slow under `rule`,
 * or undefined when it is fast enough (or the rule is off).
 */
export function tooSlow(rule: ThroughputRule, bytes: number, windowMs: number): string | undefined {
  if (rule.minBytesPerSecond <= 0 || windowMs <= 0) return undefined;
  const rate = (bytes * 1000) / windowMs;
  if (rate >= rule.minBytesPerSecond) return undefined;
  return (
    `transfer too slow: ${formatRate(rate)} over the last ${formatSeconds(windowMs)}, ` +
    `below the minimum of ${formatRate(rule.minBytesPerSecond)}`
  );
}

/** Counts the bytes of one body and calls `abort` once a window falls below the rule. */
export class ThroughputGuard {
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly rule: ThroughputRule,
    private readonly abort: (reason: string) => void,
  ) {
    if (rule.minBytesPerSecond <= 0) return;
    this.timer = setTimeout(() => {
      this.bytes = 0;
      this.timer = setInterval(() => this.check(), rule.windowMs);
      this.timer.unref();
    }, rule.graceMs);
    this.timer.unref();
  }

  add(bytes: number): void {
    this.bytes += bytes;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
  }

  private check(): void {
    const reason = tooSlow(this.rule, this.bytes, this.rule.windowMs);
    this.bytes = 0;
    if (reason === undefined || this.stopped) return;
    this.stop();
    this.abort(reason);
  }
}
