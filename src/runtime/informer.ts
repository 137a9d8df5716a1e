import type { KubernetesObject } from '@kubernetes/client-node';
import { Backoff, sleep, untilAborted, type Wakeup } from './backoff.js';
import {
  ApiError,
  apiVersionOf,
  isGone,
  type KubeClient,
  type ResourceType,
  type WatchEvent,
} from './kube-client.js';
import type { Logger } from './logger.js';
import { ObjectStore, objectKey, type InformerHandlers, type StoreEvent } from './object-store.js';
import { errorMessage } from './work-queue.js';

export { objectKey, type InformerHandlers } from './object-store.js';

export interface InformerOptions<T extends KubernetesObject> {
  resource: ResourceType;
  /** Watch one namespace only; all namespaces when unset. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Watch PartialObjectMetadata instead of whole objects. */
  metadataOnly?: boolean;
  /**
   * Keep only objects that pass. Objects that fail are never stored, so memory
   * follows what the controller needs, not what the cluster holds; an update
   * that makes a stored object fail reads as a delete.
   */
  filter?: (obj: T) => boolean;
  /**
   * Reshapes each object before it is filtered and stored (e.g. keeps only the
   * fields read), so the cache holds slim records and not what the server sent.
   */
  transform?: (obj: T) => T;
  /** Periodic replay of every cached object to the handlers (level-triggered safety net); 0 disables. */
  resyncPeriodMs?: number;
  pageSize?: number;
  /** Server-side watch timeout range; each watch picks a random value in it so reconnects spread. */
  watchTimeoutSeconds?: [number, number];
  backoff?: { baseMs: number; maxMs: number };
  /** Jitter source of the backoff (tests pin it). */
  random?: () => number;
  /** Shared by the informers of one API server: a reconnect after failures ends the others' backoff. */
  reconnected?: Wakeup;
  /**
   * A watch that receives nothing (no event, no bookmark) for this long is
   * aborted and resumed from the last resourceVersion: the connection may be
   * alive at the TCP level and dead above it. The API server sends a bookmark
   * about every minute and ends each watch at its timeout, so a working watch
   * is never this quiet. Capped at the watch's timeout plus 30 s.
   */
  watchIdleTimeoutMs?: number;
  /**
   * A watch counts as healthy once it delivered an event or bookmark, or stayed
   * open this long after the server accepted it; the reconnect backoff
   * restarts from its base after a healthy watch, however it ended.
   */
  watchHealthyAfterMs?: number;
  logger: Logger;
}

export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 180_000;
export const DEFAULT_WATCH_HEALTHY_AFTER_MS = 5_000;

export interface InformerStats {
  lists: number;
  watches: number;
  relistsAfterGone: number;
  watchRestartsAfterError: number;
  /** Watches aborted because they received nothing for longer than the idle bound. */
  watchdogRestarts: number;
  events: number;
  /** Exceptions thrown by event handlers (logged; the other handlers still ran). */
  handlerErrors: number;
}

/** What health checks read from an informer; times are performance.now() milliseconds. */
export interface InformerHealth {
  started: boolean;
  synced: boolean;
  /**
   * Last time the list/watch loop made progress: a list page or a watch event
   * or bookmark arrived, the server accepted or ended a watch, or it answered
   * with an error. Only a loop that hangs, or fails without ever
   * reaching the server, stops advancing it.
   */
  lastProgressAt: number;
  /** Since when list/watch has been failing (unset once a list succeeds or the server accepts a watch). */
  failingSince: number | undefined;
  lastError: string | undefined;
}

/** The object has a deletionTimestamp: finalizers run, nothing new should be added to it. */
export const isDeleting = (obj: { metadata?: { deletionTimestamp?: unknown } }): boolean =>
  obj.metadata?.deletionTimestamp !== undefined && obj.metadata.deletionTimestamp !== null;

export const splitKey = (key: string): { namespace?: string; name: string } => {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
};

class GoneError extends Error {}

/** The watchdog ended a watch that was silent for too long. */
class WatchIdleError extends Error {}

/** One watch connection's outcome, filled in while it runs (also when it ends with an error). */
interface WatchAttempt {
  /** Delivered an event or bookmark, or stayed open for the healthy bound. */
  healthy: boolean;
}

/**
 * The read side of a cache, shared by informers and their views: objects by
 * key, indexes and change handlers, over an ObjectStore that only the feeder
 * (the informer's list and watch) writes.
 */
abstract class CacheReader<T extends KubernetesObject> {
  protected readonly cache = new ObjectStore<T>((event, key, err) => this.handlerFailed(event, key, err));

  /** A handler threw: counted and logged by whoever owns the watch. */
  protected abstract handlerFailed(event: StoreEvent, key: string, err: unknown): void;

  addHandlers(handlers: InformerHandlers<T>): void {
    this.cache.addHandlers(handlers);
  }

  /** Registers an index; objects already cached are indexed at once. */
  addIndex(name: string, indexFn: (obj: T) => string[]): void {
    this.cache.addIndex(name, indexFn);
  }

  hasIndex(name: string): boolean {
    return this.cache.hasIndex(name);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace, name);
  }

  getByKey(key: string): T | undefined {
    return this.cache.getByKey(key);
  }

  list(): T[] {
    return this.cache.list();
  }

  keys(): string[] {
    return this.cache.keys();
  }

  get size(): number {
    return this.cache.size;
  }

  byIndex(name: string, value: string): T[] {
    return this.cache.byIndex(name, value);
  }
}

/**
 * List-then-watch cache of one resource (client-go's reflector + store).
 * - Lists in pages, then watches from the list's resourceVersion with bookmarks.
 * - A watch closed by the server resumes from the last resourceVersion seen.
 * - 410 Gone (expired resourceVersion) relists and diffs against the cache, so
 *   deletes missed while disconnected are delivered.
 * - Other errors restart the watch with exponential backoff and jitter;
 *   the informer never exits the process.
 */
export class Informer<T extends KubernetesObject> extends CacheReader<T> {
  readonly stats: InformerStats = {
    lists: 0,
    watches: 0,
    relistsAfterGone: 0,
    watchRestartsAfterError: 0,
    watchdogRestarts: 0,
    events: 0,
    handlerErrors: 0,
  };
  private readonly views: Array<InformerView<KubernetesObject, KubernetesObject>> = [];
  private readonly abort = new AbortController();
  private resourceVersion = '';
  private syncedFlag = false;
  private resolveSynced!: () => void;
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private lastProgressAt = 0;
  private failingSince: number | undefined;
  private lastError: string | undefined;
  readonly synced: Promise<void>;

  constructor(
    private readonly client: KubeClient,
    private readonly options: InformerOptions<T>,
  ) {
    super();
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  get description(): string {
    const o = this.options;
    const parts = [o.resource.plural + (o.resource.group ? `.${o.resource.group}` : '')];
    if (o.namespace) parts.push(`ns=${o.namespace}`);
    if (o.labelSelector) parts.push(`labels=${o.labelSelector}`);
    if (o.fieldSelector) parts.push(`fields=${o.fieldSelector}`);
    if (o.metadataOnly) parts.push('metadata-only');
    return parts.join(' ');
  }

  hasSynced(): boolean {
    return this.syncedFlag;
  }

  health(): InformerHealth {
    return {
      started: this.loop !== undefined,
      synced: this.syncedFlag,
      lastProgressAt: this.lastProgressAt,
      failingSince: this.failingSince,
      lastError: this.lastError,
    };
  }

  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /**
   * A second cache fed by this informer's list and watch (see InformerView).
   * Only before start(): a view added later would miss the objects already
   * listed.
   */
  view<S extends KubernetesObject>(options: InformerViewOptions<T, S>): InformerView<T, S> {
    if (this.loop) throw new Error(`a view of informer ${this.description} must be added before it starts`);
    const view = new InformerView<T, S>(this, options, (event, key, err) =>
      this.handlerFailed(event, key, err),
    );
    this.views.push(view as unknown as InformerView<KubernetesObject, KubernetesObject>);
    return view;
  }

  start(): void {
    if (this.loop) return;
    this.lastProgressAt = performance.now();
    this.loop = this.run();
    const period = this.options.resyncPeriodMs ?? 0;
    if (period > 0) {
      this.resyncTimer = setInterval(() => this.resync(), period);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.loop;
  }

  /** Replays every cached object to the update handlers (not to views). */
  resync(): void {
    this.cache.resync();
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    const backoff = new Backoff(
      this.options.backoff?.baseMs ?? 200,
      this.options.backoff?.maxMs ?? 30_000,
      this.options.random,
    );
    let needList = true;
    // The first 410 since a watch last worked relists at once: the server answered, and after an outage
    // every watch resumes from a compacted resourceVersion, so waiting out the backoff grown during the
    // outage would only keep the cache (and the reconciles held for it) stale. 410s in a row back off.
    let relistedAfterGone = false;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const attempt: WatchAttempt = { healthy: false };
      try {
        if (needList) {
          await this.listAndReplace(signal);
          needList = false;
        }
        if (signal.aborted) break;
        await this.watchOnce(signal, attempt);
        // The server accepted the watch and ended it (its timeout): resume at once if it was a working watch.
        this.connected();
        if (attempt.healthy) {
          backoff.reset();
          relistedAfterGone = false;
        } else await sleep(backoff.next(), signal);
      } catch (err) {
        if (signal.aborted) break;
        // A watch that worked for a while before it broke (a load balancer cutting
        // connections every few minutes) reconnects at the base delay, not a grown one.
        if (attempt.healthy) {
          backoff.reset();
          relistedAfterGone = false;
        }
        this.failed(err);
        if (err instanceof GoneError || isGone(err)) {
          needList = true;
          this.stats.relistsAfterGone += 1;
          logger.info('watch resourceVersion expired; relisting', { informer: this.description });
          if (!relistedAfterGone) {
            relistedAfterGone = true;
            continue;
          }
        } else if (err instanceof WatchIdleError) {
          this.stats.watchdogRestarts += 1;
          logger.warn(err.message, { informer: this.description });
        } else {
          this.stats.watchRestartsAfterError += 1;
          logger.warn('list/watch failed; restarting with backoff', {
            informer: this.description,
            error: safeErrorMessage(err),
            attempt: backoff.attempts + 1,
          });
        }
        const delay = restartDelay(backoff, err);
        // A server's Retry-After is honoured in full; a plain backoff ends when another watch got through.
        const wakeup = delay.serverAsked ? undefined : this.options.reconnected;
        await (wakeup ? wakeup.sleep(delay.ms, signal) : sleep(delay.ms, signal));
      }
    }
  }

  /** The loop moved on: data arrived or a watch worked. */
  private progressed(): void {
    this.lastProgressAt = performance.now();
  }

  private connected(): void {
    this.progressed();
    if (this.failingSince !== undefined) this.options.reconnected?.wake();
    this.failingSince = undefined;
    this.lastError = undefined;
  }

  private failed(err: unknown): void {
    // An answer from the API server (even an error) shows the loop is not hung.
    if (err instanceof ApiError || err instanceof GoneError) this.progressed();
    this.failingSince ??= performance.now();
    this.lastError = safeErrorMessage(err).slice(0, 300);
  }

  private async listAndReplace(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    const freshForViews = this.views.map(() => new Map<string, KubernetesObject>());
    let cont: string | undefined;
    let rv: string;
    do {
      // Stopping cancels the page's request and does not wait for it (nor for a rate-limit token).
      const page = await untilAborted(
        this.client.list<T>(this.options.resource, {
          namespace: this.options.namespace,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          metadataOnly: this.options.metadataOnly,
          limit: this.options.pageSize ?? 500,
          continue: cont,
          signal,
        }),
        signal,
      );
      if (signal.aborted) return;
      this.progressed();
      for (const item of page.items) {
        const prepared = this.prepare(item);
        const key = objectKey(prepared);
        this.views.forEach((view, i) => {
          const kept = view.accept(prepared);
          if (kept) freshForViews[i]!.set(key, kept);
        });
        const obj = this.transform(prepared);
        if (this.keep(obj)) fresh.set(key, obj);
      }
      cont = page.continue;
      rv = page.resourceVersion;
    } while (cont);
    this.stats.lists += 1;
    this.connected();
    // Diff against the cache so handlers see adds, updates and the deletes missed while not watching.
    this.views.forEach((view, i) => view.replaceAll(freshForViews[i]!));
    this.cache.replaceAll(fresh);
    this.resourceVersion = rv;
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      this.resolveSynced();
    }
  }

  /**
   * Watches until the server ends the watch (resolves) or it fails (rejects).
   * `attempt.healthy` records whether it worked for a while, whatever the end.
   */
  private async watchOnce(signal: AbortSignal, attempt: WatchAttempt): Promise<void> {
    const [lo, hi] = this.options.watchTimeoutSeconds ?? [300, 600];
    const timeoutSeconds = Math.round(lo + Math.random() * (hi - lo));
    const idleMs = Math.min(
      this.options.watchIdleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS,
      timeoutSeconds * 1000 + 30_000,
    );
    const healthyAfterMs = this.options.watchHealthyAfterMs ?? DEFAULT_WATCH_HEALTHY_AFTER_MS;
    this.stats.watches += 1;
    const watchAbort = new AbortController();
    const stopWatch = () => watchAbort.abort();
    signal.addEventListener('abort', stopWatch, { once: true });
    let idle = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const armWatchdog = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        idle = true;
        watchAbort.abort();
      }, idleMs);
      idleTimer.unref();
    };
    const markHealthy = () => {
      attempt.healthy = true;
    };
    // Counted from the server's 200, so a connection attempt that hangs is never "up for a while".
    let healthyTimer: NodeJS.Timeout | undefined;
    const onConnected = () => {
      this.connected();
      healthyTimer = setTimeout(markHealthy, healthyAfterMs);
      healthyTimer.unref();
    };
    armWatchdog();
    try {
      await this.client.watch<T>(
        this.options.resource,
        {
          namespace: this.options.namespace,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          metadataOnly: this.options.metadataOnly,
          resourceVersion: this.resourceVersion,
          timeoutSeconds,
          onConnected,
        },
        (event) => {
          armWatchdog();
          this.handleEvent(event);
          markHealthy();
          this.progressed();
        },
        watchAbort.signal,
      );
    } catch (err) {
      if (idle && !signal.aborted) {
        throw new WatchIdleError(
          `watch received nothing (no event, no bookmark) for ${idleMs / 1000}s; ` +
            `restarting it from resourceVersion ${this.resourceVersion}`,
        );
      }
      throw err;
    } finally {
      clearTimeout(idleTimer);
      clearTimeout(healthyTimer);
      signal.removeEventListener('abort', stopWatch);
    }
  }

  private handleEvent(event: WatchEvent<T>): void {
    if (event.type === 'ERROR') {
      const status = event.object as unknown as { code?: number; message?: string; reason?: string };
      if (status.code === 410) throw new GoneError(status.message ?? 'resourceVersion expired');
      throw new ApiError(status.code ?? 500, status.message ?? 'watch error', status.reason);
    }
    const rv = event.object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    this.stats.events += 1;
    const prepared = this.prepare(event.object);
    const key = objectKey(prepared);
    const deleted = event.type === 'DELETED';
    for (const view of this.views) view.apply(key, prepared, deleted);
    const obj = this.transform(prepared);
    if (!deleted && this.keep(obj)) this.cache.upsert(key, obj);
    else this.cache.remove(key);
    if (rv) this.resourceVersion = rv;
  }

  private prepare(obj: T): T {
    // managedFields are large and never read here.
    if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
    if (this.options.metadataOnly) {
      // The server answers with kind PartialObjectMetadata; handlers want the real kind.
      obj.kind = this.options.resource.kind;
      obj.apiVersion = apiVersionOf(this.options.resource);
    }
    return obj;
  }

  private transform(obj: T): T {
    return this.options.transform ? this.options.transform(obj) : obj;
  }

  private keep(obj: T): boolean {
    return this.options.filter ? this.options.filter(obj) : true;
  }

  protected handlerFailed(event: StoreEvent, key: string, err: unknown): void {
    this.stats.handlerErrors += 1;
    this.options.logger.error('informer event handler failed', {
      informer: this.description,
      event,
      key,
      error: errorMessage(err),
    });
  }
}

/** What a view keeps of each object its informer receives. */
export interface InformerViewOptions<T, S> {
  /** Must not modify its argument: the informer keeps the same object. */
  transform: (obj: T) => S;
  /** Keep only objects that pass (after transform). */
  filter?: (obj: S) => boolean;
}

/**
 * A second cache over one informer's list and watch, with its own transform,
 * filter, indexes and handlers. It sees every object the watch delivers,
 * including those the informer's own filter drops, and costs no connection:
 * one watch of dockerconfigjson Secrets keeps placeholders whole and every
 * other such Secret as a slim record. Synced when its informer is.
 */
export class InformerView<T extends KubernetesObject, S extends KubernetesObject> extends CacheReader<S> {
  constructor(
    private readonly source: Informer<T>,
    private readonly options: InformerViewOptions<T, S>,
    private readonly onHandlerError: (event: StoreEvent, key: string, err: unknown) => void,
  ) {
    super();
  }

  protected handlerFailed(event: StoreEvent, key: string, err: unknown): void {
    this.onHandlerError(event, key, err);
  }

  get description(): string {
    return `view of ${this.source.description}`;
  }

  get synced(): Promise<void> {
    return this.source.synced;
  }

  hasSynced(): boolean {
    return this.source.hasSynced();
  }

  health(): InformerHealth {
    return this.source.health();
  }

  /** What this view keeps of `obj`, or undefined when its filter drops it. Called by the informer. */
  accept(obj: T): S | undefined {
    const kept = this.options.transform(obj);
    return !this.options.filter || this.options.filter(kept) ? kept : undefined;
  }

  /** One watch event. Called by the informer. */
  apply(key: string, obj: T, deleted: boolean): void {
    const kept = deleted ? undefined : this.accept(obj);
    if (kept) this.cache.upsert(key, kept);
    else this.cache.remove(key);
  }

  /** A new list. Called by the informer. */
  replaceAll(fresh: Map<string, S>): void {
    this.cache.replaceAll(fresh);
  }
}

/** The read side of an InformerView, whatever its source type. */
export type ViewOf<S extends KubernetesObject> = Omit<
  InformerView<KubernetesObject, S>,
  'accept' | 'apply' | 'replaceAll'
>;

/**
 * One cache over views that hold disjoint parts of a resource (Secrets of
 * type dockerconfigjson, Secrets of every other type), each fed by its own
 * watch. A Secret deleted and created again with another type can be in two
 * parts for a moment (one watch is ahead of the other): reads then see one of
 * them, and the late watch's delete puts it right.
 */
export class ViewUnion<S extends KubernetesObject> {
  readonly synced: Promise<void>;

  constructor(private readonly parts: Array<ViewOf<S>>) {
    this.synced = Promise.all(parts.map((p) => p.synced)).then(() => undefined);
  }

  get description(): string {
    return this.parts.map((p) => p.description).join(' + ');
  }

  hasSynced(): boolean {
    return this.parts.every((p) => p.hasSynced());
  }

  /** The least healthy part: failing since the earliest time, progressed the longest ago. */
  health(): InformerHealth {
    const all = this.parts.map((p) => p.health());
    const failing = all.filter((h) => h.failingSince !== undefined);
    return {
      started: all.every((h) => h.started),
      synced: all.every((h) => h.synced),
      lastProgressAt: Math.min(...all.map((h) => h.lastProgressAt)),
      failingSince: failing.length ? Math.min(...failing.map((h) => h.failingSince!)) : undefined,
      lastError: failing.find((h) => h.lastError !== undefined)?.lastError,
    };
  }

  addHandlers(handlers: InformerHandlers<S>): void {
    for (const p of this.parts) p.addHandlers(handlers);
  }

  addIndex(name: string, indexFn: (obj: S) => string[]): void {
    for (const p of this.parts) p.addIndex(name, indexFn);
  }

  hasIndex(name: string): boolean {
    return this.parts.every((p) => p.hasIndex(name));
  }

  get(namespace: string | undefined, name: string): S | undefined {
    for (const p of this.parts) {
      const obj = p.get(namespace, name);
      if (obj) return obj;
    }
    return undefined;
  }

  get size(): number {
    return this.parts.reduce((n, p) => n + p.size, 0);
  }

  list(): S[] {
    return this.distinct(this.parts.flatMap((p) => p.list()));
  }

  byIndex(name: string, value: string): S[] {
    return this.distinct(this.parts.flatMap((p) => p.byIndex(name, value)));
  }

  private distinct(objects: S[]): S[] {
    const seen = new Set<string>();
    return objects.filter((obj) => {
      const key = objectKey(obj);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
}

/**
 * An error's message for logs and /readyz. JSON.parse quotes the text it
 * failed on, which may be a Secret's data: such errors are not quoted.
 */
export function safeErrorMessage(err: unknown): string {
  if (err instanceof SyntaxError) return 'the API server sent a response that is not valid JSON';
  return errorMessage(err);
}

/**
 * The server's Retry-After when it sent one (a 429, or "storage is
 * (re)initializing" right after a restart), up to 60 s: it knows when it can
 * serve again, and a backoff grown during an outage would wait far longer.
 * Otherwise the backoff's next delay.
 */
export function restartDelay(backoff: Backoff, err: unknown): { ms: number; serverAsked: boolean } {
  const retryAfterMs = err instanceof ApiError ? (err.retryAfterMs ?? 0) : 0;
  if (retryAfterMs > 0) return { ms: Math.min(retryAfterMs, MAX_RETRY_AFTER_MS), serverAsked: true };
  return { ms: backoff.next(), serverAsked: false };
}

const MAX_RETRY_AFTER_MS = 60_000;

export const byNamespaceIndex = (obj: KubernetesObject): string[] =>
  obj.metadata?.namespace ? [obj.metadata.namespace] : [];
