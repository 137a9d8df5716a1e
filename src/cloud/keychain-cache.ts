// When a cached cloud credential is still good to hand out, and a bounded
// map of them. Pure (time comes from the caller).

/** Hand a credential out until this long before it expires: 10% of its lifetime, at most 5 minutes. */
export function reuseUntil(mintedAtMs: number, expiresAtMs: number): number {
  const lifetime = Math.max(0, expiresAtMs - mintedAtMs);
  return expiresAtMs - Math.min(5 * 60_000, lifetime / 10);
}

export type CacheEntry<T> =
  { kind: 'value'; value: T; reuseUntilMs: number } | { kind: 'error'; message: string; untilMs: number };

/**
 * At most `maxEntries` entries, the least recently used dropped first; an
 * entry past its time is gone on read.
 */
export class BoundedCache<T> {
  private readonly entries = new Map<string, CacheEntry<T>>();

  constructor(
    readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): CacheEntry<T> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const until = entry.kind === 'value' ? entry.reuseUntilMs : entry.untilMs;
    if (until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // Most recently used goes last.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  set(key: string, entry: CacheEntry<T>): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
