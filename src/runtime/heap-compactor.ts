/**
 * Compacts V8's old generation when it is fragmented, instead of at every
 * full collection.
 *
 * A burst of reconciles (a rotation reaching 1,000 placeholders, thousands of
 * Apps re-running) leaves old-space pages partly empty. V8's ordinary full
 * collections evacuate only nearly empty pages, so without compaction the
 * process keeps tens of MB it does not use. `--compact-on-every-full-gc`
 * fixed that, but it copies the whole live heap (about 35 MB, much of it the
 * source text of loaded modules) twice per 1,000 writes, in the middle of the
 * fan-out. This compacts once, after the burst: when a sample finds the event
 * loop quiet and the old space holding more than it uses. A process that
 * never goes quiet (a tenant churning objects without pause) is compacted too,
 * less often and only when the waste is larger, so memory stays bounded and a
 * compaction costs at most a few percent of one core.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import { domainMetrics, type HeapCompactionTrigger } from './domain-metrics.js';
import type { Logger } from './logger.js';

/** One look at the old space, and at the event loop up to now. */
export interface HeapSample {
  /** Bytes the old space holds from the system. */
  committedBytes: number;
  /** Bytes of live (or not yet collected) objects in it. */
  usedBytes: number;
  /** How long the event loop has been quiet without a break (0 when the last sample found it busy). */
  quietForMs: number;
  /** Time since the last compaction this process asked for (Infinity before the first). */
  sinceLastCompactionMs: number;
}

export interface CompactionBounds {
  /** A sample interval whose event-loop utilization is at most this counts as quiet. */
  quietUtilization: number;
  /** Quiet: compact once the loop has been quiet this long ... */
  quietMinMs: number;
  /** ... the old space wastes at least this many bytes ... */
  quietMinWasteBytes: number;
  /** ... and at least this fraction of what it uses ... */
  quietMinWasteRatio: number;
  /** ... and the last compaction is this long ago. */
  quietMinIntervalMs: number;
  /** Busy: compact only when the waste is at least this many bytes ... */
  busyMinWasteBytes: number;
  /** ... and at least this fraction of what it uses ... */
  busyMinWasteRatio: number;
  /** ... and the last compaction is this long ago. */
  busyMinIntervalMs: number;
}

export const DEFAULT_COMPACTION_BOUNDS: CompactionBounds = {
  quietUtilization: 0.1,
  quietMinMs: 3_000,
  quietMinWasteBytes: 4 * 2 ** 20,
  quietMinWasteRatio: 0.1,
  quietMinIntervalMs: 10_000,
  busyMinWasteBytes: 8 * 2 ** 20,
  busyMinWasteRatio: 0.2,
  busyMinIntervalMs: 15_000,
};

/** Whether this sample calls for a compaction, and why; undefined when it does not. */
export function compactionTrigger(
  sample: HeapSample,
  bounds: CompactionBounds = DEFAULT_COMPACTION_BOUNDS,
): HeapCompactionTrigger | undefined {
  const waste = Math.max(0, sample.committedBytes - sample.usedBytes);
  const wastes = (minBytes: number, minRatio: number) =>
    waste >= minBytes && waste >= minRatio * sample.usedBytes;
  if (
    sample.quietForMs >= bounds.quietMinMs &&
    sample.sinceLastCompactionMs >= bounds.quietMinIntervalMs &&
    wastes(bounds.quietMinWasteBytes, bounds.quietMinWasteRatio)
  ) {
    return 'quiet';
  }
  if (
    sample.sinceLastCompactionMs >= bounds.busyMinIntervalMs &&
    wastes(bounds.busyMinWasteBytes, bounds.busyMinWasteRatio)
  ) {
    return 'busy';
  }
  return undefined;
}

/** A full collection that evacuates every old-space page it can. */
export type CompactingCollection = () => void;

/**
 * Node's own way to reach V8's full collection without starting the process
 * with `--expose-gc`: the flag, set at run time, gives new contexts a `gc`.
 * `--compact-on-every-full-gc` is on only for that one collection.
 */
export function v8CompactingCollection(): CompactingCollection {
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = vm.runInNewContext('typeof gc === "function" ? gc : undefined');
  if (typeof gc !== 'function') throw new Error('this Node.js does not give new contexts a gc function');
  return () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      (gc as () => void)();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

export interface OldSpaceSize {
  committedBytes: number;
  usedBytes: number;
}

function v8OldSpace(): OldSpaceSize {
  const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
  return { committedBytes: space?.space_size ?? 0, usedBytes: space?.space_used_size ?? 0 };
}

export class HeapCompactor {
  private timer: NodeJS.Timeout | undefined;
  private lastUtilization = performance.eventLoopUtilization();
  private lastCompactionAt = -Infinity;
  private lastSampleAt = performance.now();
  private quietForMs = 0;

  private readonly collect: CompactingCollection;
  private readonly oldSpace: () => OldSpaceSize;
  private readonly intervalMs: number;
  private readonly bounds: CompactionBounds;

  constructor(
    private readonly logger: Logger,
    options: {
      collect?: CompactingCollection;
      oldSpace?: () => OldSpaceSize;
      intervalMs?: number;
      bounds?: CompactionBounds;
    } = {},
  ) {
    this.collect = options.collect ?? v8CompactingCollection();
    this.oldSpace = options.oldSpace ?? v8OldSpace;
    this.intervalMs = options.intervalMs ?? 1_000;
    this.bounds = options.bounds ?? DEFAULT_COMPACTION_BOUNDS;
  }

  start(): void {
    if (this.timer) return;
    this.lastUtilization = performance.eventLoopUtilization();
    this.lastSampleAt = performance.now();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One sample, and a compaction when it calls for one; public so tests can drive it. */
  tick(): HeapCompactionTrigger | undefined {
    const now = performance.now();
    const loop = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(loop, this.lastUtilization).utilization;
    this.lastUtilization = loop;
    this.quietForMs =
      utilization <= this.bounds.quietUtilization ? this.quietForMs + now - this.lastSampleAt : 0;
    this.lastSampleAt = now;
    const before = this.oldSpace();
    const trigger = compactionTrigger(
      { ...before, quietForMs: this.quietForMs, sinceLastCompactionMs: now - this.lastCompactionAt },
      this.bounds,
    );
    if (!trigger) return undefined;
    const collectStart = performance.now();
    this.collect();
    const seconds = (performance.now() - collectStart) / 1000;
    // The collection's own time must not make the next sample look busy.
    this.lastUtilization = performance.eventLoopUtilization();
    this.lastCompactionAt = this.lastSampleAt = performance.now();
    const after = this.oldSpace();
    domainMetrics.heapCompacted(trigger);
    this.logger.debug('compacted the V8 old space', {
      trigger,
      seconds: Math.round(seconds * 1000) / 1000,
      committedMbBefore: megabytes(before.committedBytes),
      committedMbAfter: megabytes(after.committedBytes),
      usedMbAfter: megabytes(after.usedBytes),
    });
    return trigger;
  }
}

const megabytes = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
