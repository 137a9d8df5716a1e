import framework, { ResourceEventType, type ResourceEvent, type ResourceMeta } from '@dot-i/k8s-operator';
import type { KubernetesObject } from '@kubernetes/client-node';
import { isJsonPatchTestFailure, isStaleWrite, staleObjectError, type JsonPatchOp } from './api-errors.js';
import { fitStatus, jsonEqual } from './conditions.js';
import type { EventRecorder } from './events.js';
import type { InformerFactory } from './informer-factory.js';
import { objectKey, type InformerHandlers, type InformerHealth } from './informer.js';
import {
  ApiError,
  isNotFound,
  isTransportFailure,
  type KubeClient,
  type ResourceType,
} from './kube-client.js';
import type { Logger } from './logger.js';
import { RecentStatusWrites } from './status-writes.js';
import { WorkQueue, type ReconcileResult } from './work-queue.js';

/** What every controller of this process shares. */
export interface OperatorContext {
  client: KubeClient;
  informers: InformerFactory;
  events: EventRecorder;
  logger: Logger;
  /** Workers per controller queue. */
  concurrency: number;
  /** Replay of all cached objects to the queues, as a level-triggered safety net. */
  resyncPeriodMs: number;
}

/** A gauge a controller exposes on /metrics, read at scrape time: one value, or one per label set. */
export type ControllerGauge =
  | { name: string; help: string; value: () => number }
  | {
      name: string;
      help: string;
      labelNames: readonly string[];
      /** Every series now; series not returned are dropped. Label values must not be tenant-controlled. */
      series: () => Array<{ labels: Record<string, string>; value: number }>;
    };

/** What a watched informer saw happen to an object. */
export type WatchedEvent = 'add' | 'update' | 'delete';

/** What a controller can watch: an informer, a view of one, or a union of views. */
export interface WatchSource<T> {
  addHandlers(handlers: InformerHandlers<T>): void;
  health(): InformerHealth;
  readonly description: string;
}

// The framework ships as CommonJS with `exports.default`.
const FrameworkOperator = framework.default;

/** How long reconciles wait for a watched cache that lost its API connection (the readiness bound). */
export const CACHE_DISCONNECTED_HOLD_MS = 60_000;
/** How often a held key looks again. */
const CACHE_RECHECK_MS = 500;

/**
 * Base class of every controller, on the @dot-i/k8s-operator skeleton (init(),
 * start(), logger injection, finalizer flow). What the framework does unsafely
 * is replaced here:
 * - watches: informers (list + watch from resourceVersion, relist on 410,
 *   backoff restarts, resync) instead of a raw watch that exits the process;
 * - one global queue of events: a keyed, coalescing, retrying queue per
 *   controller; reconciles read current state from the caches (level-triggered);
 * - status and finalizer writes: errors propagate to the queue (retried) and
 *   finalizer patches never clobber other finalizers;
 * - stop(): drains in-flight work instead of exiting with status 1.
 */
export abstract class ControllerOperator extends FrameworkOperator {
  readonly queue: WorkQueue;
  protected readonly client: KubeClient;
  protected readonly log: Logger;

  constructor(
    protected readonly ctx: OperatorContext,
    readonly controllerName: string,
  ) {
    const log = ctx.logger.child({ controller: controllerName });
    super(log);
    this.log = log;
    this.client = ctx.client;
    this.queue = new WorkQueue({
      name: controllerName,
      concurrency: ctx.concurrency,
      handler: (key) => this.reconcileOnConnectedCaches(key),
      logger: log,
      isStaleRead: isStaleWrite,
      isUnreachable: isTransportFailure,
    });
    this.stopRetryingOnReconnect = ctx.informers.onReconnected(() => {
      for (const q of [this.queue, ...this.frameworkQueues]) {
        const retried = q.retryUnreachableNow();
        if (retried > 0)
          log.info('API server reachable again; retrying now what it did not answer', {
            queue: q.name,
            keys: retried,
          });
      }
    });
  }

  private readonly stopRetryingOnReconnect: () => void;

  /** Domain gauges of this controller (e.g. objects it manages); none by default. */
  metricGauges(): ControllerGauge[] {
    return [];
  }

  /** Register informers and event handlers; called once by start(). */
  protected abstract override init(): Promise<void>;

  /** Bring the object named by `key` to its desired state, reading from the caches. */
  protected abstract reconcile(key: string): Promise<ReconcileResult | void>;

  override async start(): Promise<void> {
    await this.init();
  }

  private workersRunning = false;
  private readonly recentStatusWrites = new RecentStatusWrites();
  private readonly watchedInformers: Array<Pick<WatchSource<KubernetesObject>, 'health' | 'description'>> =
    [];

  /**
   * Reconciles only while every informer this controller watches is connected:
   * during an API server outage the caches stop following, and acting on them
   * once the server is back (before each watch has caught up) rewrites objects
   * that our own earlier writes already set. A cache cut off for longer than
   * CACHE_DISCONNECTED_HOLD_MS is used anyway, so a lasting failure (e.g. a
   * revoked permission, which /readyz reports) cannot stop the controller.
   */
  private async reconcileOnConnectedCaches(key: string): Promise<ReconcileResult | void> {
    const now = performance.now();
    const cutOff = this.watchedInformers.some((informer) => {
      const since = informer.health().failingSince;
      return since !== undefined && now - since < CACHE_DISCONNECTED_HOLD_MS;
    });
    if (cutOff) return { requeueAfterMs: CACHE_RECHECK_MS };
    return this.reconcile(key);
  }

  /** Starts the workers; the manager calls this once the caches have synced (and this replica leads). */
  runWorkers(): void {
    this.workersRunning = true;
    this.queue.start();
    for (const q of this.frameworkQueues) q.start();
  }

  // The framework's stop() returns void and exits; this one resolves once in-flight work is done.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  override async stop(): Promise<void> {
    this.stopRetryingOnReconnect();
    await Promise.all([this.queue, ...this.frameworkQueues].map((q) => q.shutdown()));
    await this.ctx.events.drain();
  }

  /** Shared informer of a resource, with handlers that enqueue keys computed by `toKeys`. */
  protected watch<T extends KubernetesObject, W extends WatchSource<T>>(
    informer: W & WatchSource<T>,
    toKeys: (obj: T, old: T | undefined, event: WatchedEvent) => Iterable<string> = (obj) => [objectKey(obj)],
  ): W {
    const enqueue = (event: WatchedEvent, obj: T, old?: T) => {
      for (const key of toKeys(obj, old, event)) this.queue.add(key);
    };
    if (!this.watchedInformers.includes(informer)) this.watchedInformers.push(informer);
    informer.addHandlers({
      onAdd: (obj) => enqueue('add', obj),
      onUpdate: (old, obj) => enqueue('update', obj, old),
      onDelete: (obj) => enqueue('delete', obj),
    });
    return informer;
  }

  /**
   * Writes `status` through the status subresource when it differs from what
   * the cached object has, and from what this controller last wrote over that
   * same cached version (a cache lagging our write); no write when nothing
   * changed. Strings longer than MAX_MESSAGE_CHARS are truncated (see
   * fitStatus). Errors propagate.
   */
  protected async writeStatus<T extends KubernetesObject & { status?: unknown }>(
    rt: ResourceType,
    obj: T,
    status: unknown,
  ): Promise<boolean> {
    // Long texts are cut first, so the write fits and a steady long message compares equal.
    const fitted = fitStatus(status);
    const key = objectKey(obj);
    const md = obj.metadata!;
    if (jsonEqual(obj.status, fitted)) {
      this.recentStatusWrites.forget(key);
      return false;
    }
    if (this.recentStatusWrites.alreadyWritten(key, md.resourceVersion, fitted)) return false;
    // Replace the whole status: a merge patch computed against a cached status
    // that lags our own previous write would leave stale fields behind.
    await this.client.jsonPatch(
      rt,
      md.namespace,
      md.name!,
      [{ op: 'add', path: '/status', value: fitted }],
      'status',
    );
    this.recentStatusWrites.written(key, md.resourceVersion, fitted);
    return true;
  }

  /** Adds a finalizer with a JSON patch guarded by resourceVersion, leaving other finalizers alone. */
  protected async addFinalizer(rt: ResourceType, obj: KubernetesObject, finalizer: string): Promise<void> {
    const md = obj.metadata!;
    if (md.finalizers?.includes(finalizer)) return;
    const ops = [
      { op: 'test', path: '/metadata/resourceVersion', value: md.resourceVersion },
      md.finalizers
        ? { op: 'add', path: '/metadata/finalizers/-', value: finalizer }
        : { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
    ];
    await this.guardedPatch(rt, md.namespace, md.name!, ops);
  }

  /**
   * A JSON patch guarded by `test` ops. A failed test (422) means the cache
   * lags the object: it is raised as a conflict, which the queue retries
   * quietly from the newer cached object instead of reporting a failure.
   */
  protected async guardedPatch<T extends KubernetesObject = KubernetesObject>(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    ops: JsonPatchOp[],
  ): Promise<T> {
    try {
      return await this.client.jsonPatch<T>(rt, namespace, name, ops);
    } catch (err) {
      if (err instanceof ApiError && isJsonPatchTestFailure(err, ops)) {
        throw staleObjectError(err, `${rt.kind || rt.plural} ${namespace ? `${namespace}/` : ''}${name}`);
      }
      throw err;
    }
  }

  /** Removes a finalizer by index, guarded by a test of that index so a concurrent change is not clobbered. */
  protected async removeFinalizer(rt: ResourceType, obj: KubernetesObject, finalizer: string): Promise<void> {
    const md = obj.metadata!;
    const index = md.finalizers?.indexOf(finalizer) ?? -1;
    if (index < 0) return;
    try {
      await this.guardedPatch(rt, md.namespace, md.name!, [
        { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
        { op: 'remove', path: `/metadata/finalizers/${index}` },
      ]);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  // ---- The framework's own API, made safe. Controllers here use the keyed API above. ----

  private readonly frameworkResources = new Map<string, ResourceType>();
  private readonly frameworkQueues: WorkQueue[] = [];

  protected override async watchResource(
    group: string,
    version: string,
    plural: string,
    onEvent: (event: ResourceEvent) => Promise<void>,
    namespace?: string,
  ): Promise<void> {
    const rt: ResourceType = { group, version, plural, kind: '', namespaced: true };
    const id = `${plural}.${group ? `${group}/${version}` : version}`;
    this.frameworkResources.set(id, rt);
    const latest = new Map<string, ResourceEvent>();
    const queue = new WorkQueue({
      name: `${this.controllerName}:${id}`,
      concurrency: this.ctx.concurrency,
      logger: this.log,
      isStaleRead: isStaleWrite,
      isUnreachable: isTransportFailure,
      handler: async (key) => {
        const event = latest.get(key);
        if (!event) return;
        await onEvent(event);
        if (latest.get(key) === event) latest.delete(key);
      },
    });
    const informer = this.ctx.informers.get<KubernetesObject>(`framework:${id}:${namespace ?? ''}`, {
      resource: rt,
      namespace,
      resyncPeriodMs: this.ctx.resyncPeriodMs,
    });
    const push = (type: ResourceEventType, object: KubernetesObject) => {
      const key = objectKey(object);
      latest.set(key, { type, object, meta: frameworkMeta(id, object) });
      queue.add(key);
    };
    this.frameworkQueues.push(queue);
    informer.addHandlers({
      onAdd: (o) => push(ResourceEventType.Added, o),
      onUpdate: (_old, o) => push(ResourceEventType.Modified, o),
      onDelete: (o) => push(ResourceEventType.Deleted, o),
    });
    // Events queue up (coalesced per key) until the workers may run.
    if (this.workersRunning) queue.start();
  }

  protected override async setResourceStatus(
    meta: ResourceMeta,
    status: unknown,
  ): Promise<ResourceMeta | null> {
    const rt = this.frameworkResource(meta);
    const current = await this.client.get(rt, meta.namespace, meta.name);
    if (!current) return null;
    const fitted = fitStatus(status);
    const updated = await this.client.replace(
      rt,
      { ...current, status: fitted } as KubernetesObject,
      'status',
    );
    return frameworkMeta(meta.id, updated);
  }

  protected override async patchResourceStatus(
    meta: ResourceMeta,
    status: unknown,
  ): Promise<ResourceMeta | null> {
    const rt = this.frameworkResource(meta);
    try {
      const updated = await this.client.mergePatch(
        rt,
        meta.namespace,
        meta.name,
        { status: fitStatus(status) },
        'status',
      );
      return frameworkMeta(meta.id, updated);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  protected override async handleResourceFinalizer(
    event: ResourceEvent,
    finalizer: string,
    deleteAction: (event: ResourceEvent) => Promise<void>,
  ): Promise<boolean> {
    const md = event.object.metadata;
    if (!md || event.type === ResourceEventType.Deleted) return false;
    const rt = this.frameworkResource(event.meta);
    if (!md.deletionTimestamp) {
      if (md.finalizers?.includes(finalizer)) return false;
      await this.addFinalizer(rt, event.object, finalizer);
      return true;
    }
    if (md.finalizers?.includes(finalizer)) {
      await deleteAction(event);
      await this.removeFinalizer(rt, event.object, finalizer);
    }
    return true;
  }

  protected override async setResourceFinalizers(meta: ResourceMeta, finalizers: string[]): Promise<void> {
    const rt = this.frameworkResource(meta);
    await this.guardedPatch(rt, meta.namespace, meta.name, [
      { op: 'test', path: '/metadata/resourceVersion', value: meta.resourceVersion },
      { op: 'add', path: '/metadata/finalizers', value: finalizers },
    ]);
  }

  private frameworkResource(meta: ResourceMeta): ResourceType {
    const rt = this.frameworkResources.get(meta.id);
    if (!rt) throw new Error(`resource ${meta.id} is not watched by ${this.controllerName}`);
    return rt;
  }
}

function frameworkMeta(id: string, obj: KubernetesObject): ResourceMeta {
  const md = obj.metadata ?? {};
  return {
    id,
    name: md.name ?? '',
    namespace: md.namespace,
    resourceVersion: md.resourceVersion ?? '',
    apiVersion: obj.apiVersion ?? '',
    kind: obj.kind ?? '',
  };
}

/**
 * A JSON merge patch only sets fields; a field present before and absent now
 * must be sent as null to be removed.
 */
export function replaceNulls(previous: unknown, next: unknown): unknown {
  if (!isPlainObject(previous) || !isPlainObject(next)) return next;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(previous)) if (!(key in next) || next[key] === undefined) out[key] = null;
  for (const [key, value] of Object.entries(next)) {
    if (value === undefined) continue;
    out[key] = replaceNulls(previous[key], value);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
