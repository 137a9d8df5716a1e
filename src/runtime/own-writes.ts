import type { WatchedEvent } from './operator.js';

/**
 * The object versions a controller wrote itself, so the watch event that
 * echoes such a write can be told apart from someone else's change.
 *
 * A reconcile that writes an object has already acted on what it wrote; the
 * echo brings nothing new, yet queueing its key again costs a second
 * reconcile that reads the same caches, and a write guarded by a cache that
 * has not seen the controller's previous write yet fails as stale. Only an
 * exact (object, resourceVersion) match is an echo: any other change has a
 * new resourceVersion and is queued as usual.
 *
 * The echo may arrive before the write's answer, so a write is bracketed by
 * begin() and end(): events for the object in between are held, and end()
 * says whether any of them was not the write's own version (then the caller
 * queues the key, which runs again after the current reconcile).
 *
 * Bounded: at most `maxEntries` recorded versions, each forgotten after
 * `ttlMs`; events held during one write at most MAX_HELD (more count as a
 * change by someone else).
 */
export class OwnWrites {
  private readonly versions = new Map<string, { resourceVersion: string; at: number }>();
  private readonly writing = new Map<string, { count: number; held: Array<string | undefined> }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.versions.size;
  }

  /**
   * Sends one write of the object bracketed by begin() and end(), and calls
   * `requeue` when an event held meanwhile was someone else's change. Returns
   * what `send` returns; its error is rethrown.
   */
  async write<T extends { metadata?: { resourceVersion?: string } }>(
    kind: string,
    namespace: string | undefined,
    name: string,
    send: () => Promise<T>,
    requeue: () => void,
  ): Promise<T> {
    let written: string | undefined;
    this.begin(kind, namespace, name);
    try {
      const result = await send();
      written = result.metadata?.resourceVersion;
      return result;
    } finally {
      if (this.end(kind, namespace, name, written)) requeue();
    }
  }

  /** A watch event of `obj` that needs no queueing: the echo of this controller's write (a delete never is). */
  isEchoEvent(
    kind: string,
    obj: { metadata?: { namespace?: string; name?: string; resourceVersion?: string } },
    event: WatchedEvent,
  ): boolean {
    const md = obj.metadata ?? {};
    return event !== 'delete' && this.isEcho(kind, md.namespace, md.name ?? '', md.resourceVersion);
  }

  /** A write of the object is about to be sent. Always pair with end(). */
  begin(kind: string, namespace: string | undefined, name: string): void {
    const key = objectId(kind, namespace, name);
    const entry = this.writing.get(key);
    if (entry) entry.count += 1;
    else this.writing.set(key, { count: 1, held: [] });
  }

  /**
   * The write ended: with the version it produced, or undefined when it
   * failed. True when an event held meanwhile was someone else's change (or
   * the write failed after events came), so the caller must queue the key.
   */
  end(
    kind: string,
    namespace: string | undefined,
    name: string,
    resourceVersion: string | undefined,
  ): boolean {
    const key = objectId(kind, namespace, name);
    const entry = this.writing.get(key);
    if (!entry) return false;
    entry.count -= 1;
    if (entry.count > 0) return false;
    this.writing.delete(key);
    const echoSeen = resourceVersion !== undefined && entry.held.includes(resourceVersion);
    // The echo already came: nothing left to match later.
    if (resourceVersion !== undefined && !echoSeen) this.record(key, resourceVersion);
    return entry.held.some((held) => held === undefined || held !== resourceVersion);
  }

  /**
   * True when the event's object needs no queueing now: it is exactly the
   * version this controller wrote (each recorded version matches once), or a
   * write of it is in flight (end() decides). False for any other version.
   */
  isEcho(
    kind: string,
    namespace: string | undefined,
    name: string,
    resourceVersion: string | undefined,
  ): boolean {
    const key = objectId(kind, namespace, name);
    const inFlight = this.writing.get(key);
    if (inFlight) {
      if (inFlight.held.length < MAX_HELD) inFlight.held.push(resourceVersion);
      else inFlight.held[MAX_HELD - 1] = undefined;
      return true;
    }
    this.trim();
    const entry = this.versions.get(key);
    if (!entry || resourceVersion === undefined) return false;
    // A newer version of the object than the one recorded: the recorded echo will not come any more.
    this.versions.delete(key);
    return entry.resourceVersion === resourceVersion;
  }

  private record(key: string, resourceVersion: string): void {
    // Re-inserted so the Map's order stays oldest first.
    this.versions.delete(key);
    this.versions.set(key, { resourceVersion, at: this.now() });
    this.trim();
  }

  private trim(): void {
    const oldest = this.now() - this.ttlMs;
    for (const [key, entry] of this.versions) {
      if (this.versions.size <= this.maxEntries && entry.at >= oldest) break;
      this.versions.delete(key);
    }
  }
}

/** Events held for one write; past it, the last slot says "someone else changed it" (undefined). */
const MAX_HELD = 16;

const objectId = (kind: string, namespace: string | undefined, name: string): string =>
  `${kind}\0${namespace ?? ''}\0${name}`;
