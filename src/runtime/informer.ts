import type { KubernetesObject } from '@kubernetes/client-node';
import { Backoff, sleep } from './backoff.js';
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
  logger: Logger;
}

export interface InformerStats {
  lists: number;
  watches: number;
  relistsAfterGone: number;
  watchRestartsAfterError: number;
  events: number;
}

export const objectKey = (obj: KubernetesObject): string =>
  obj.metadata?.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : `${obj.metadata?.name}`;

export const splitKey = (key: string): { namespace?: string; name: string } => {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
};

class GoneError extends Error {}

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
    events: 0,
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
    for (const obj of this.store.values()) for (const h of this.handlers) h.onUpdate?.(obj, obj);
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    const backoff = new Backoff(this.options.backoff?.baseMs ?? 200, this.options.backoff?.maxMs ?? 30_000);
    let needList = true;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.listAndReplace();
          needList = false;
        }
        const healthy = await this.watchOnce(signal);
        if (healthy) backoff.reset();
        else await sleep(backoff.next(), signal);
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof GoneError || isGone(err)) {
          needList = true;
          this.stats.relistsAfterGone += 1;
          logger.info('watch resourceVersion expired; relisting', { informer: this.description });
        } else {
          this.stats.watchRestartsAfterError += 1;
          logger.warn('list/watch failed; restarting with backoff', {
            informer: this.description,
            error: errorMessage(err),
            attempt: backoff.attempts + 1,
          });
        }
        await sleep(backoff.next(), signal);
      }
    }
  }

  private async listAndReplace(): Promise<void> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.client.list<T>(this.options.resource, {
        namespace: this.options.namespace,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        metadataOnly: this.options.metadataOnly,
        limit: this.options.pageSize ?? 500,
        continue: cont,
      });
      for (const item of page.items) {
        const obj = this.normalize(item);
        if (this.keep(obj)) fresh.set(objectKey(obj), obj);
      }
      cont = page.continue;
      rv = page.resourceVersion;
    } while (cont);
    this.stats.lists += 1;
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

  /** Returns true when the watch looked healthy: it delivered events or stayed open a while. */
  private async watchOnce(signal: AbortSignal): Promise<boolean> {
    const [lo, hi] = this.options.watchTimeoutSeconds ?? [300, 600];
    this.stats.watches += 1;
    const started = performance.now();
    let delivered = false;
    await this.client.watch<T>(
      this.options.resource,
      {
        namespace: this.options.namespace,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        metadataOnly: this.options.metadataOnly,
        resourceVersion: this.resourceVersion,
        timeoutSeconds: Math.round(lo + Math.random() * (hi - lo)),
      },
      (event) => {
        this.handleEvent(event);
        delivered = true;
      },
      signal,
    );
    return delivered || performance.now() - started > 1000;
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
    for (const h of this.handlers) {
      if (old) h.onUpdate?.(old, obj);
      else h.onAdd?.(obj);
    }
  }

  private remove(key: string, old: T): void {
    this.unindex(key, old);
    this.store.delete(key);
    for (const h of this.handlers) h.onDelete?.(old);
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

export const byNamespaceIndex = (obj: KubernetesObject): string[] =>
  obj.metadata?.namespace ? [obj.metadata.namespace] : [];
