import type { KubernetesObject } from '@kubernetes/client-node';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

export type StoreEvent = 'add' | 'update' | 'delete';

export const objectKey = (obj: KubernetesObject): string =>
  obj.metadata?.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : `${obj.metadata?.name}`;

/**
 * Objects by key with secondary indexes and change handlers (client-go's
 * indexer and its event fan-out). Whoever feeds it (an informer's list and
 * watch) calls upsert, remove and replaceAll; readers only read.
 */
export class ObjectStore<T extends KubernetesObject> {
  private readonly store = new Map<string, T>();
  private readonly indexers = new Map<string, (obj: T) => string[]>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly handlers: InformerHandlers<T>[] = [];

  constructor(private readonly onHandlerError: (event: StoreEvent, key: string, err: unknown) => void) {}

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  /** Registers an index; objects already stored are indexed at once. */
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

  /** Replays every stored object to the update handlers. */
  resync(): void {
    for (const [key, obj] of this.store) this.notify('update', key, (h) => h.onUpdate?.(obj, obj));
  }

  /** Stores `obj` and tells handlers; the same resourceVersion again is no change. */
  upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    if (old) this.unindex(key, old);
    this.store.set(key, obj);
    this.index(key, obj);
    if (old) this.notify('update', key, (h) => h.onUpdate?.(old, obj));
    else this.notify('add', key, (h) => h.onAdd?.(obj));
  }

  /** Drops the object under `key`, if any, and tells handlers. */
  remove(key: string): void {
    const old = this.store.get(key);
    if (!old) return;
    this.unindex(key, old);
    this.store.delete(key);
    this.notify('delete', key, (h) => h.onDelete?.(old));
  }

  /** Makes the store equal `fresh` (a new list): handlers see the adds, updates and the deletes in between. */
  replaceAll(fresh: Map<string, T>): void {
    for (const key of [...this.store.keys()]) if (!fresh.has(key)) this.remove(key);
    for (const [key, obj] of fresh) this.upsert(key, obj);
  }

  /** Calls every handler; one that throws is reported and does not keep the event from the others. */
  private notify(event: StoreEvent, key: string, call: (h: InformerHandlers<T>) => void): void {
    for (const h of this.handlers) {
      try {
        call(h);
      } catch (err) {
        this.onHandlerError(event, key, err);
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
