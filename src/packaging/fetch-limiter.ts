// Admission of App and PackageRepository fetches, shared by both controllers:
//
//   - Slots: at most --max-concurrent-fetches fetches run at once, at most
//     half of them from one namespace (fetch-slots.ts). A fetch that has to
//     wait never holds a worker: admit() answers at once, the waiting key is
//     remembered per namespace, and when a slot frees the next namespace in
//     round-robin order gets it reserved and its key queued again (`wake`).
//     A reservation not claimed in time goes back to the queue.
//   - Deadline: a running fetch gets a signal that aborts after
//     --fetch-timeout, with a message naming the flag.
//   - Disk: each slot owns an equal share of --fetch-disk-budget, so the
//     fetches running at once never hold more than the budget:
//       share = budget / max concurrent fetches (default 1536 MiB / 8 = 192 MiB),
//     and a fetch's stages together stay within its share.
//
// A permit lives from admit() until the reconcile that got it ends (the
// controller removes its work directory before that), and is found by the
// stage runners through the reconcile's async context.

import { AsyncLocalStorage } from 'node:async_hooks';

import { nextNamespace, slotLimits, type SlotLimits } from './fetch-slots.js';

const MiB = 1024 * 1024;
export const DEFAULT_FETCH_TIMEOUT = '5m';
export const DEFAULT_MAX_CONCURRENT_FETCHES = 8;
/** Fits the Deployment's 2 Gi /tmp emptyDir with a quarter to spare. */
export const DEFAULT_FETCH_DISK_BUDGET_BYTES = 1536 * MiB;
/** A woken fetch that does not come for its reserved slot within this time loses it. */
const DEFAULT_CLAIM_TIMEOUT_MS = 60_000;

/** A Go duration as Go prints it: 5m0s, 1h30m0s, 1.5s, 300ms. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${Math.round(ms * 1000) / 1000}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = Math.round(ms % 60_000) / 1000;
  return `${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${seconds}s`;
}

/** `192 MiB`, `1.5 GiB`, `512 KiB`, `100 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Math.round(value * 10) / 10} ${units[unit]}`;
}

/** Why a fetch's signal aborted: its --fetch-timeout passed. */
export class FetchDeadlineError extends Error {
  override readonly name = 'FetchDeadlineError';
}

export interface FetchPermit {
  readonly namespace: string;
  /** Aborts with a FetchDeadlineError when --fetch-timeout has passed. */
  readonly signal: AbortSignal;
  /** Disk the whole fetch (all its stages) may use. */
  readonly diskShareBytes: number;
  /** Disk its stages have used so far. */
  diskUsedBytes: number;
}

export interface FetchLimiterOptions {
  maxConcurrent: number;
  timeoutMs: number;
  diskBudgetBytes: number;
  claimTimeoutMs?: number;
}

interface Waiter {
  namespace: string;
  wake: () => void;
}

interface Running {
  permit: FetchPermit;
  timer: NodeJS.Timeout;
}

interface Scope {
  holder: string;
  /** The holder had a reserved slot when this reconcile started: its chance to claim it. */
  hadReservation: boolean;
  permit?: FetchPermit;
}

const scopes = new AsyncLocalStorage<Scope>();

/** The permit of the fetch running in this async context, if any. */
export function currentFetchPermit(): FetchPermit | undefined {
  return scopes.getStore()?.permit;
}

export class FetchLimiter {
  readonly limits: SlotLimits;
  readonly diskShareBytes: number;
  readonly timeoutMs: number;
  private readonly claimTimeoutMs: number;
  private readonly running = new Map<string, Running>();
  private readonly reserved = new Map<string, { waiter: Waiter; timer: NodeJS.Timeout }>();
  /** Waiting holders per namespace; the Map's order is the round-robin order of namespaces. */
  private readonly waiting = new Map<string, Map<string, Waiter>>();

  constructor(options: FetchLimiterOptions) {
    this.limits = slotLimits(options.maxConcurrent);
    this.timeoutMs = options.timeoutMs;
    this.diskShareBytes = Math.floor(options.diskBudgetBytes / options.maxConcurrent);
    this.claimTimeoutMs = options.claimTimeoutMs ?? DEFAULT_CLAIM_TIMEOUT_MS;
  }

  /** Fetches running or holding a reserved slot, per namespace. */
  inUse(): Map<string, number> {
    const counts = new Map<string, number>();
    const count = (namespace: string) => counts.set(namespace, (counts.get(namespace) ?? 0) + 1);
    for (const { permit } of this.running.values()) count(permit.namespace);
    for (const { waiter } of this.reserved.values()) count(waiter.namespace);
    return counts;
  }

  /** Number of fetches waiting for a slot. */
  get waitingCount(): number {
    let n = 0;
    for (const holders of this.waiting.values()) n += holders.size;
    return n;
  }

  /**
   * A permit when `holder` (a controller's key) may fetch now; otherwise it
   * waits for its turn, and `wake` is called when a slot is reserved for it.
   * Never blocks.
   */
  admit(holder: string, namespace: string, wake: () => void): FetchPermit | undefined {
    const current = this.running.get(holder);
    if (current) return current.permit;
    if (!this.reserved.has(holder)) {
      let holders = this.waiting.get(namespace);
      if (!holders) this.waiting.set(namespace, (holders = new Map<string, Waiter>()));
      if (!holders.has(holder)) holders.set(holder, { namespace, wake });
      this.pump(holder);
    }
    const reservation = this.reserved.get(holder);
    if (!reservation) return undefined;
    clearTimeout(reservation.timer);
    this.reserved.delete(holder);
    const permit = this.start(holder, namespace);
    const scope = scopes.getStore();
    if (scope?.holder === holder) scope.permit = permit;
    return permit;
  }

  /**
   * Runs one reconcile of `holder`. A permit admit() grants inside ends with
   * it; so does a slot reserved for the holder before it started and left
   * unclaimed (the reconcile decided not to fetch).
   */
  async run<T>(holder: string, fn: () => Promise<T>): Promise<T> {
    const scope: Scope = { holder, hadReservation: this.reserved.has(holder) };
    return scopes.run(scope, async () => {
      try {
        return await fn();
      } finally {
        this.finish(scope);
      }
    });
  }

  /** Drops every trace of `holder` (its object is gone). */
  forget(holder: string): void {
    this.stopRunning(holder);
    this.dropReservation(holder);
    for (const [namespace, holders] of this.waiting) {
      if (holders.delete(holder) && holders.size === 0) this.waiting.delete(namespace);
    }
    this.pump();
  }

  private finish(scope: Scope): void {
    const released = this.stopRunning(scope.holder);
    const dropped = scope.hadReservation && this.dropReservation(scope.holder);
    if (released || dropped) this.pump();
  }

  private start(holder: string, namespace: string): FetchPermit {
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new FetchDeadlineError(
            `fetch timed out after ${formatGoDuration(this.timeoutMs)} (--fetch-timeout)`,
          ),
        ),
      this.timeoutMs,
    );
    timer.unref();
    const permit: FetchPermit = {
      namespace,
      signal: controller.signal,
      diskShareBytes: this.diskShareBytes,
      diskUsedBytes: 0,
    };
    this.running.set(holder, { permit, timer });
    return permit;
  }

  private stopRunning(holder: string): boolean {
    const running = this.running.get(holder);
    if (!running) return false;
    clearTimeout(running.timer);
    this.running.delete(holder);
    return true;
  }

  private dropReservation(holder: string): boolean {
    const reservation = this.reserved.get(holder);
    if (!reservation) return false;
    clearTimeout(reservation.timer);
    this.reserved.delete(holder);
    return true;
  }

  /** Reserves free slots for waiting holders, round-robin over namespaces, and wakes them (except `self`). */
  private pump(self?: string): void {
    for (;;) {
      const namespace = nextNamespace(this.limits, this.inUse(), this.waiting.keys());
      if (namespace === undefined) return;
      const holders = this.waiting.get(namespace)!;
      const [holder, waiter] = holders.entries().next().value as [string, Waiter];
      holders.delete(holder);
      // Served: to the back of the round-robin order.
      this.waiting.delete(namespace);
      if (holders.size > 0) this.waiting.set(namespace, holders);
      const timer = setTimeout(() => this.expire(holder), this.claimTimeoutMs);
      timer.unref();
      this.reserved.set(holder, { waiter, timer });
      if (holder !== self) waiter.wake();
    }
  }

  /** A reservation nobody came for: back to the end of its namespace's queue. */
  private expire(holder: string): void {
    const reservation = this.reserved.get(holder);
    if (!reservation) return;
    this.reserved.delete(holder);
    const { waiter } = reservation;
    let holders = this.waiting.get(waiter.namespace);
    if (!holders) this.waiting.set(waiter.namespace, (holders = new Map<string, Waiter>()));
    holders.set(holder, waiter);
    this.pump();
  }
}
