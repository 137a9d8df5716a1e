/**
 * The object versions a controller wrote itself, so the watch event that
 * echoes such a write can be told apart from someone else's change.
 *
 * A reconcile that writes an object has already acted on what it wrote; the
 * echo brings nothing new, yet queueing its key again costs a second
 * reconcile that reads the same caches, and a write guarded by a cache that
 * has not seen the controller's previous write yet fails as stale. Only an
 * exact (object, resourceVersion) match is an echo: any other change to the
 * object has a new resourceVersion and is queued as usual. An echo that
 * arrives before the write's answer is not recognised and is queued as
 * before (the entry then ages out), so a miss only costs the extra reconcile.
 *
 * Bounded: at most `maxEntries` versions, each forgotten after `ttlMs`.
 */
export class OwnWrites {
  private readonly versions = new Map<string, { resourceVersion: string; at: number }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.versions.size;
  }

  /** Records that this controller wrote `resourceVersion` of the object. */
  wrote(
    kind: string,
    namespace: string | undefined,
    name: string,
    resourceVersion: string | undefined,
  ): void {
    if (!resourceVersion) return;
    const key = objectId(kind, namespace, name);
    // Re-inserted so the Map's order stays oldest first.
    this.versions.delete(key);
    this.versions.set(key, { resourceVersion, at: this.now() });
    this.trim();
  }

  /**
   * True when the event's object is exactly the version this controller
   * wrote (each recorded version matches once); false for any other version.
   */
  isEcho(
    kind: string,
    namespace: string | undefined,
    name: string,
    resourceVersion: string | undefined,
  ): boolean {
    this.trim();
    const key = objectId(kind, namespace, name);
    const entry = this.versions.get(key);
    if (!entry || resourceVersion === undefined) return false;
    // A newer version of the object than the one recorded: the recorded echo will not come any more.
    this.versions.delete(key);
    return entry.resourceVersion === resourceVersion;
  }

  private trim(): void {
    const oldest = this.now() - this.ttlMs;
    for (const [key, entry] of this.versions) {
      if (this.versions.size <= this.maxEntries && entry.at >= oldest) break;
      this.versions.delete(key);
    }
  }
}

const objectId = (kind: string, namespace: string | undefined, name: string): string =>
  `${kind}\0${namespace ?? ''}\0${name}`;
