import { createHash } from 'node:crypto';

/** Enough for every object one controller reconciles in a burst; the oldest entry goes first. */
const MAX_ENTRIES = 10_000;
/** A watch shows a write within moments; an older entry says nothing about the cache any more. */
const ENTRY_LIFETIME_MS = 30_000;

/**
 * The status each object was last given by this controller, and the cached
 * resourceVersion that write was computed from. Until the cache shows the
 * write, the cached status is older than the one written: a reconcile in that
 * window (e.g. from the watch echo of another write of ours) would send the
 * same status again, a request that changes nothing. Entries keep a digest of
 * the status, not the status, and last 30 s.
 */
export class RecentStatusWrites {
  private readonly entries = new Map<string, { basedOn: string; digest: string; atMs: number }>();

  constructor(
    private readonly maxEntries = MAX_ENTRIES,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Whether `status` (the same JSON) is what was last written over this same
   * cached version. A cache that moved on (our write or anyone's) ends the
   * entry: from then on the cached status is the truth.
   */
  alreadyWritten(key: string, cachedVersion: string | undefined, status: unknown): boolean {
    this.prune();
    const entry = this.entries.get(key);
    if (!entry) return false;
    if (entry.basedOn !== cachedVersion) {
      this.entries.delete(key);
      return false;
    }
    return entry.digest === digestOf(status);
  }

  written(key: string, basedOn: string | undefined, status: unknown): void {
    this.entries.delete(key);
    if (basedOn !== undefined) this.entries.set(key, { basedOn, digest: digestOf(status), atMs: this.now() });
    this.prune();
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Entries are in write order: expired ones and any over the bound are at the front. */
  private prune(): void {
    const expiredBefore = this.now() - ENTRY_LIFETIME_MS;
    for (const [key, entry] of this.entries) {
      if (entry.atMs >= expiredBefore && this.entries.size <= this.maxEntries) break;
      this.entries.delete(key);
    }
  }
}

function digestOf(status: unknown): string {
  return createHash('sha256').update(JSON.stringify(status)).digest('base64');
}
