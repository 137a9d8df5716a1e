import type { CoreV1Event, KubernetesObject } from '@kubernetes/client-node';
import { truncateMessage } from './conditions.js';
import type { KubeClient, ResourceType } from './kube-client.js';
import type { Logger } from './logger.js';
import { errorMessage } from './work-queue.js';

export const EventsResource: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
  namespaced: true,
};

export type EventType = 'Normal' | 'Warning';

const DEDUPE_WINDOW_MS = 10 * 60_000;
/** Event messages are meant to be short (events.k8s.io caps its note at 1 kB). */
export const MAX_EVENT_MESSAGE_CHARS = 1024;

/**
 * Writes core/v1 Events about objects. Events are best effort (a failure is
 * logged, never fails a reconcile). The same event for the same object is
 * written once per window, so a reconcile that repeats a warning does not
 * turn a steady state into a stream of writes.
 */
export class EventRecorder {
  private readonly recent = new Map<string, number>();
  readonly written: Array<{ object: string; type: EventType; reason: string; message: string }> = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly client: KubeClient,
    private readonly logger: Logger,
    private readonly component = 'regcred-operator',
    private readonly instance = process.env.POD_NAME ?? 'local',
  ) {}

  event(obj: KubernetesObject, type: EventType, reason: string, fullMessage: string): void {
    // A replica that is not the leader writes nothing; the leader reports the same condition.
    if (!this.client.writesAllowed()) return;
    const message = truncateMessage(fullMessage, MAX_EVENT_MESSAGE_CHARS);
    const md = obj.metadata ?? {};
    const namespace = md.namespace ?? 'default';
    const dedupeKey = `${md.uid ?? `${namespace}/${md.name}`}|${type}|${reason}|${message}`;
    const now = Date.now();
    const last = this.recent.get(dedupeKey);
    if (last !== undefined && now - last < DEDUPE_WINDOW_MS) return;
    this.recent.set(dedupeKey, now);
    if (this.recent.size > 10_000) this.prune(now);
    const time = new Date(now);
    const event: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${md.name ?? 'object'}.`, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: md.name,
        namespace: md.namespace,
        uid: md.uid,
        resourceVersion: md.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.written.push({ object: `${obj.kind}/${namespace}/${md.name}`, type, reason, message });
    if (this.written.length > 1000) this.written.shift();
    const write: Promise<void> = this.client
      .create(EventsResource, event, namespace)
      .then(
        () => undefined,
        (err: unknown) => {
          this.logger.warn('could not write event', {
            object: `${obj.kind} ${namespace}/${md.name}`,
            reason,
            error: errorMessage(err),
          });
        },
      )
      .finally(() => this.inFlight.delete(write));
    this.inFlight.add(write);
  }

  /** Resolves once the Events being written are done: a stopping operator waits for them before closing its client. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= DEDUPE_WINDOW_MS) this.recent.delete(k);
  }
}
