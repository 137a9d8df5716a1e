import type { KubernetesObject } from '@kubernetes/client-node';
import { Wakeup } from './backoff.js';
import { Informer, type InformerOptions } from './informer.js';
import type { KubeClient } from './kube-client.js';
import type { Logger } from './logger.js';

/**
 * One informer per name, shared by every controller that asks for it (one
 * Namespace cache, one placeholder cache, one Secret index, ...). Informers
 * asked for after start() start at once; dynamic ones are reference-counted
 * and stopped when the last user releases them.
 */
export class InformerFactory {
  private readonly informers = new Map<string, { informer: Informer<KubernetesObject>; refs: number }>();
  private started = false;
  /** One API server behind every informer: the first to reconnect after an outage wakes the rest. */
  private readonly reconnected = new Wakeup();

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
  ) {}

  get<T extends KubernetesObject>(name: string, options: Omit<InformerOptions<T>, 'logger'>): Informer<T> {
    const existing = this.informers.get(name);
    if (existing) {
      existing.refs += 1;
      return existing.informer as unknown as Informer<T>;
    }
    const informer = new Informer<T>(this.client, {
      reconnected: this.reconnected,
      ...options,
      logger: this.logger.child({ informer: name }),
    });
    this.informers.set(name, { informer: informer as unknown as Informer<KubernetesObject>, refs: 1 });
    if (this.started) informer.start();
    return informer;
  }

  /** Drops one reference; the informer stops when none is left. */
  async release(name: string): Promise<void> {
    const entry = this.informers.get(name);
    if (!entry) return;
    entry.refs -= 1;
    if (entry.refs > 0) return;
    this.informers.delete(name);
    await entry.informer.stop();
  }

  /**
   * Calls `listener` whenever a watch reconnects after failing (the API server
   * is reachable again), until the returned function is called.
   */
  onReconnected(listener: () => void): () => void {
    return this.reconnected.onWake(listener);
  }

  /** The informer registered under `name`, without taking a reference. */
  lookup<T extends KubernetesObject>(name: string): Informer<T> | undefined {
    return this.informers.get(name)?.informer as unknown as Informer<T> | undefined;
  }

  start(): void {
    this.started = true;
    for (const { informer } of this.informers.values()) informer.start();
  }

  /** Resolves when every informer registered so far has listed once. */
  async waitForSync(): Promise<void> {
    await Promise.all([...this.informers.values()].map(({ informer }) => informer.synced));
  }

  allSynced(): boolean {
    return [...this.informers.values()].every(({ informer }) => informer.hasSynced());
  }

  all(): Array<{ name: string; informer: Informer<KubernetesObject> }> {
    return [...this.informers.entries()].map(([name, { informer }]) => ({ name, informer }));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map(({ informer }) => informer.stop()));
    this.informers.clear();
  }
}
