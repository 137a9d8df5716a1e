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
import { errorMessage } from './work-queue.js';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

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

export const objectKey = (obj: KubernetesObject): string =>
  obj.metadata?.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : `${obj.metadata?.name}`;

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
 * List-then-watch cache of one resource (client-go's reflector + store).
 * - Lists in pages, then watches from the list's resourceVersion with bookmarks.
 * - A watch closed by the server resumes from the last resourceVersion seen.
 * - 410 Gone (expired resourceVersion) relists and diffs against the cache, so
 *   deletes missed while disconnected are delivered.
 * - Other errors restart the watch with exponential backoff and jitter;
 *   the informer never exits the process.
 */
export class Informer<T extends KubernetesObject> {
  readonly stats: InformerStats = {
    lists: 0,
    watches: 0,
    relistsAfterGone: 0,
    watchRestartsAfterError: 0,
    watchdogRestarts: 0,
    events: 0,
    handlerErrors: 0,
  };
  private readonly store = new Map<string, T>();
  private readonly indexers = new Map<string, (obj: T) => string[]>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly handlers: InformerHandlers<T>[] = [];
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

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  /** Registers an index; objects already cached are indexed at once. */
  addIndex(name: string, indexFn: (obj: T) => string[]): void {
    this.indexers.set(name, indexFn);
    this.indexes.set(name, new Map());
    for (const [key, obj] of this.store) this.addToIndex(name, indexFn, key, obj);
  }

  hasIndex(name: string): boolean {
    return this.indexers.has(name);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  get size(): number {
    return this.store.size;
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const obj = this.store.get(k);
      if (obj) out.push(obj);
    }
    return out;
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

  /** Replays every cached object to the update handlers. */
  resync(): void {
    for (const [key, obj] of this.store) this.notify('update', key, (h) => h.onUpdate?.(obj, obj));
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    const backoff = new Backoff(
      this.options.backoff?.baseMs ?? 200,
      this.options.backoff?.maxMs ?? 30_000,
      this.options.random,
    );
    let needList = true;
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
        if (attempt.healthy) backoff.reset();
        else await sleep(backoff.next(), signal);
      } catch (err) {
        if (signal.aborted) break;
        // A watch that worked for a while before it broke (a load balancer cutting
        // connections every few minutes) reconnects at the base delay, not a grown one.
        if (attempt.healthy) backoff.reset();
        this.failed(err);
        if (err instanceof GoneError || isGone(err)) {
          needList = true;
          this.stats.relistsAfterGone += 1;
          logger.info('watch resourceVersion expired; relisting', { informer: this.description });
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
        const obj = this.normalize(item);
        if (this.keep(obj)) fresh.set(objectKey(obj), obj);
      }
      cont = page.continue;
      rv = page.resourceVersion;
    } while (cont);
    this.stats.lists += 1;
    this.connected();
    // Diff against the cache so handlers see adds, updates and the deletes missed while not watching.
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) this.remove(key, old);
    }
    for (const [key, obj] of fresh) this.upsert(key, obj);
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
    const obj = this.normalize(event.object);
    const key = objectKey(obj);
    if (event.type === 'DELETED') {
      const old = this.store.get(key);
      if (old) this.remove(key, old);
    } else if (this.keep(obj)) {
      this.upsert(key, obj);
    } else {
      const old = this.store.get(key);
      if (old) this.remove(key, old);
    }
    if (rv) this.resourceVersion = rv;
  }

  private normalize(obj: T): T {
    // managedFields are large and never read here.
    if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
    if (this.options.metadataOnly) {
      // The server answers with kind PartialObjectMetadata; handlers want the real kind.
      obj.kind = this.options.resource.kind;
      obj.apiVersion = apiVersionOf(this.options.resource);
    }
    return this.options.transform ? this.options.transform(obj) : obj;
  }

  private keep(obj: T): boolean {
    return this.options.filter ? this.options.filter(obj) : true;
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    if (old) this.unindex(key, old);
    this.store.set(key, obj);
    this.index(key, obj);
    if (old) this.notify('update', key, (h) => h.onUpdate?.(old, obj));
    else this.notify('add', key, (h) => h.onAdd?.(obj));
  }

  private remove(key: string, old: T): void {
    this.unindex(key, old);
    this.store.delete(key);
    this.notify('delete', key, (h) => h.onDelete?.(old));
  }

  /** Calls every handler; one that throws is logged and does not keep the event from the others. */
  private notify(
    event: 'add' | 'update' | 'delete',
    key: string,
    call: (h: InformerHandlers<T>) => void,
  ): void {
    for (const h of this.handlers) {
      try {
        call(h);
      } catch (err) {
        this.stats.handlerErrors += 1;
        this.options.logger.error('informer event handler failed', {
          informer: this.description,
          event,
          key,
          error: errorMessage(err),
        });
      }
    }
  }

  private index(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) this.addToIndex(name, fn, key, obj);
  }

  private addToIndex(name: string, indexFn: (obj: T) => string[], key: string, obj: T): void {
    const idx = this.indexes.get(name)!;
    for (const value of indexFn(obj)) {
      let keys = idx.get(value);
      if (!keys) idx.set(value, (keys = new Set()));
      keys.add(key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indexes.get(name)!;
      for (const value of fn(obj)) {
        const keys = idx.get(value);
        keys?.delete(key);
        if (keys?.size === 0) idx.delete(value);
      }
    }
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
