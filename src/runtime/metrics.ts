import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CLOUD_PROVIDER_NAMES } from '../cloud/types.js';
import {
  CLOUD_MINT_PURPOSES,
  CLOUD_MINT_RESULTS,
  HEAP_COMPACTION_TRIGGERS,
  listenToDomainMetrics,
} from './domain-metrics.js';
import type { RequestCounts, RequestObservation } from './kube-client.js';
import type { ControllerGauge } from './operator.js';
import type { WorkQueue } from './work-queue.js';

/** What the metrics read at scrape time from the running process. */
export interface MetricsSource {
  /** One queue per controller; its name is the controller's name. */
  queues: readonly WorkQueue[];
  controllerGauges: readonly ControllerGauge[];
  informers: () => Array<{
    name: string;
    size: number;
    stats: { watchdogRestarts: number; handlerErrors: number };
  }>;
  leaseName: string;
  isLeading: () => boolean;
  isReady: () => boolean;
  /** Every required CRD and whether it is missing now. */
  crds: () => Array<{ crd: string; missing: boolean }>;
  eventLoopMaxLagSeconds: () => number;
  apiRequestCounts: () => RequestCounts;
}

/** Reconcile and work-queue latencies span milliseconds to minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Admission handling is sub-millisecond; the API server gives up after the webhook's 2 s timeout. */
const ADMISSION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2];
/** client-go's work-queue buckets: 1 µs to 10 s by powers of ten. */
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10];
const FETCH_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const BYTES_BUCKETS = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** Sets a counter to a total the process already keeps (prom-client counters only go up via inc). */
function setTotal<T extends string>(counter: Counter<T>, labels: Record<T, string>, total: number): void {
  counter.inc(labels, total);
}

/**
 * The /metrics registry of one Manager (prom-client): controller-runtime's
 * controller metrics, client-go's work-queue, REST client and leader-election
 * metrics, prom-client's default process and Node.js metrics, the operator's
 * own (regcred_*) and domain metrics. One registry per Manager, so several in
 * one process (tests) do not share values.
 */
export class OperatorMetrics {
  readonly registry = new Registry();
  private readonly stopListening: () => void;

  constructor(source: MetricsSource, client?: { observeRequests(o: (r: RequestObservation) => void): void }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    // controller-runtime
    const reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller.',
      labelNames: ['controller', 'result'] as const,
      registers,
    });
    const reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller.',
      labelNames: ['controller'] as const,
      registers,
    });
    const reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller.',
      labelNames: ['controller'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller.',
      labelNames: ['controller'] as const,
      registers,
      collect() {
        for (const q of source.queues) this.set({ controller: q.name }, q.active);
      },
    });
    new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller.',
      labelNames: ['controller'] as const,
      registers,
      collect() {
        for (const q of source.queues) this.set({ controller: q.name }, q.concurrency);
      },
    });

    // client-go work queue
    new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue.',
      labelNames: ['name'] as const,
      registers,
      collect() {
        for (const q of source.queues) this.set({ name: q.name }, q.length);
      },
    });
    const adds = new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue (keys already queued are not counted).',
      labelNames: ['name'] as const,
      registers,
    });
    const retries = new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue.',
      labelNames: ['name'] as const,
      registers,
    });
    const queueDuration = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested.',
      labelNames: ['name'] as const,
      buckets: QUEUE_BUCKETS,
      registers,
    });
    const workDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames: ['name'] as const,
      buckets: QUEUE_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help: 'How many seconds of work has been done that is in progress and has not been observed by work_duration.',
      labelNames: ['name'] as const,
      registers,
      collect() {
        for (const q of source.queues)
          this.set(
            { name: q.name },
            q.runningSeconds().reduce((a, b) => a + b, 0),
          );
      },
    });
    new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      labelNames: ['name'] as const,
      registers,
      collect() {
        for (const q of source.queues) this.set({ name: q.name }, Math.max(0, ...q.runningSeconds()));
      },
    });
    for (const q of source.queues) {
      const name = q.name;
      // Every series exists from the start (at 0), as with controller-runtime.
      adds.inc({ name }, 0);
      retries.inc({ name }, 0);
      reconcileErrors.inc({ controller: name }, 0);
      q.observe({
        added: () => adds.inc({ name }),
        retried: () => retries.inc({ name }),
        started: (queuedSeconds) => queueDuration.observe({ name }, queuedSeconds),
        finished: (workSeconds, outcome) => {
          workDuration.observe({ name }, workSeconds);
          reconcileTime.observe({ controller: name }, workSeconds);
          reconcileTotal.inc({ controller: name, result: outcome });
          if (outcome === 'error') reconcileErrors.inc({ controller: name });
        },
      });
    }

    // client-go REST client
    const restRequests = new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests to the API server, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'] as const,
      registers,
    });
    const restDuration = new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds to the API server (watches: until the response headers), by verb and host.',
      labelNames: ['verb', 'host'] as const,
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers,
    });
    client?.observeRequests(({ method, code, host, seconds }) => {
      restRequests.inc({ code, method, host });
      restDuration.observe({ verb: method, host }, seconds);
    });

    new Gauge({
      name: 'leader_election_master_status',
      help: 'Whether this replica leads and runs the workers (always 1 with leader election off).',
      labelNames: ['name'] as const,
      registers,
      collect() {
        this.set({ name: source.leaseName }, source.isLeading() ? 1 : 0);
      },
    });

    // The operator's own metrics (kept from before prom-client: e2e tests, the bench and dashboards read them).
    new Gauge({
      name: 'regcred_ready',
      help: 'Whether every cache has synced, no required informer has been failing to list/watch for long, and every required CRD is served.',
      registers,
      collect() {
        this.set(source.isReady() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'regcred_crd_missing',
      help: 'Whether a CRD the selected controllers need is missing (deleted while running).',
      labelNames: ['crd'] as const,
      registers,
      collect() {
        for (const { crd, missing } of source.crds()) this.set({ crd }, missing ? 1 : 0);
      },
    });
    new Gauge({
      name: 'regcred_workqueue_depth',
      help: 'Keys waiting in each controller queue.',
      labelNames: ['queue'] as const,
      registers,
      collect() {
        for (const q of source.queues) this.set({ queue: q.name }, q.length);
      },
    });
    const queueCounters = [
      ['added', 'added', 'Keys added, coalesced ones included'],
      ['processed', 'processed', 'Reconciles run'],
      ['failures', 'failures', 'Reconciles that failed'],
      ['retries', 'retries', 'Retries scheduled after a failure'],
      ['staleReads', 'stale_reads', 'Writes refused because the cached object was stale (retried quietly)'],
    ] as const;
    for (const [field, name, help] of queueCounters) {
      new Counter({
        name: `regcred_workqueue_${name}_total`,
        help: `${help}, per controller queue.`,
        labelNames: ['queue'] as const,
        registers,
        collect() {
          this.reset();
          for (const q of source.queues) setTotal(this, { queue: q.name }, q.stats[field]);
        },
      });
    }
    const informerCounter = (
      name: string,
      help: string,
      field: 'watchdogRestarts' | 'handlerErrors',
    ): Counter<'informer'> =>
      new Counter({
        name,
        help,
        labelNames: ['informer'] as const,
        registers,
        collect() {
          this.reset();
          for (const i of source.informers()) setTotal(this, { informer: i.name }, i.stats[field]);
        },
      });
    new Gauge({
      name: 'regcred_informer_cached_objects',
      help: 'Objects held in each informer cache.',
      labelNames: ['informer'] as const,
      registers,
      collect() {
        this.reset();
        for (const i of source.informers()) this.set({ informer: i.name }, i.size);
      },
    });
    informerCounter(
      'regcred_informer_watchdog_restarts_total',
      'Watches restarted because they received nothing (no event, no bookmark) for longer than the idle bound.',
      'watchdogRestarts',
    );
    informerCounter(
      'regcred_informer_handler_errors_total',
      'Exceptions thrown by informer event handlers (logged; the other handlers still ran).',
      'handlerErrors',
    );
    new Gauge({
      name: 'regcred_event_loop_max_lag_seconds',
      help: 'Longest event-loop block within the liveness window.',
      registers,
      collect() {
        this.set(source.eventLoopMaxLagSeconds());
      },
    });
    new Counter({
      name: 'regcred_api_requests_total',
      help: 'Kubernetes API requests by verb (attempts; watches as WATCH).',
      labelNames: ['verb'] as const,
      registers,
      collect() {
        this.reset();
        for (const [verb, n] of Object.entries(source.apiRequestCounts())) setTotal(this, { verb }, n);
      },
    });

    // Domain metrics
    for (const gauge of source.controllerGauges) {
      if ('series' in gauge) {
        new Gauge({
          name: gauge.name,
          help: gauge.help,
          labelNames: [...gauge.labelNames],
          registers,
          collect() {
            this.reset();
            for (const { labels, value } of gauge.series()) this.set(labels, value);
          },
        });
        continue;
      }
      new Gauge({
        name: gauge.name,
        help: gauge.help,
        registers,
        collect() {
          this.set(gauge.value());
        },
      });
    }
    const placeholderWrites = new Counter({
      name: 'regcred_placeholder_writes_total',
      help: 'Placeholder Secrets written (filled or changed).',
      registers,
    });
    const propagation = new Histogram({
      name: 'regcred_placeholder_propagation_seconds',
      help: 'Seconds from the newest source Secret change to each placeholder write that carries it.',
      buckets: DURATION_BUCKETS,
      registers,
    });
    const lastPropagation = new Gauge({
      name: 'regcred_placeholder_propagation_last_seconds',
      help: 'Seconds from the newest source Secret change to the last placeholder updated after it.',
      registers,
    });
    const conflicts = new Counter({
      name: 'regcred_registry_conflicts_total',
      help: 'Registries that several exports gave credentials for, counted at each placeholder write (one export wins).',
      registers,
    });
    const fetchDuration = new Histogram({
      name: 'regcred_fetch_duration_seconds',
      help: 'Duration of App/PackageRepository fetch stages, by stage kind and result.',
      labelNames: ['kind', 'result'] as const,
      buckets: FETCH_BUCKETS,
      registers,
    });
    const fetchBytes = new Histogram({
      name: 'regcred_fetch_bytes',
      help: 'Bytes pulled by fetch stages that report them (image, imgpkgBundle), by stage kind and result.',
      labelNames: ['kind', 'result'] as const,
      buckets: BYTES_BUCKETS,
      registers,
    });
    const admissions = new Counter({
      name: 'regcred_webhook_admissions_total',
      help: 'Pod admission requests answered by the webhook: mutated (entries added), skipped (nothing to add) or error (admitted unchanged after an internal error).',
      labelNames: ['result'] as const,
      registers,
    });
    for (const result of ['mutated', 'skipped', 'error'] as const) admissions.inc({ result }, 0);
    const admissionDuration = new Histogram({
      name: 'regcred_webhook_admission_duration_seconds',
      help: 'Time the webhook spent on one Pod admission request, from the whole body read to the answer written.',
      buckets: ADMISSION_BUCKETS,
      registers,
    });
    const cloudMints = new Counter({
      name: 'regcred_cloud_credential_mints_total',
      help: 'Registry credentials asked of a cloud provider, by provider, purpose (fetch: an App/PackageRepository keychain; registrytoken: a RegistryToken renewal) and result.',
      labelNames: ['provider', 'purpose', 'result'] as const,
      registers,
    });
    for (const provider of CLOUD_PROVIDER_NAMES)
      for (const purpose of CLOUD_MINT_PURPOSES)
        for (const result of CLOUD_MINT_RESULTS) cloudMints.inc({ provider, purpose, result }, 0);
    const cloudMintDuration = new Histogram({
      name: 'regcred_cloud_credential_mint_duration_seconds',
      help: 'Time a cloud provider took to mint one registry credential (metadata server, STS, token exchange), by provider and result.',
      labelNames: ['provider', 'result'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    const heapCompactions = new Counter({
      name: 'regcred_heap_compactions_total',
      help: 'Compacting garbage collections the operator asked of V8 after a burst left the old space fragmented: quiet (the event loop was idle) or busy (the waste grew large without a pause).',
      labelNames: ['trigger'] as const,
      registers,
    });
    for (const trigger of HEAP_COMPACTION_TRIGGERS) heapCompactions.inc({ trigger }, 0);
    this.stopListening = listenToDomainMetrics({
      heapCompacted: (trigger) => heapCompactions.inc({ trigger }),
      webhookAdmission: (result, seconds) => {
        admissions.inc({ result });
        admissionDuration.observe(seconds);
      },
      placeholderUpdated: (seconds) => {
        placeholderWrites.inc();
        if (seconds === undefined) return;
        propagation.observe(seconds);
        lastPropagation.set(seconds);
      },
      registryConflicts: (count) => conflicts.inc(count),
      cloudCredentialMinted: (provider, purpose, result, seconds) => {
        cloudMints.inc({ provider, purpose, result });
        cloudMintDuration.observe({ provider, result }, seconds);
      },
      fetched: (kind, result, seconds, bytes) => {
        fetchDuration.observe({ kind, result }, seconds);
        fetchBytes.observe({ kind, result }, bytes);
      },
    });
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops counting domain events (the Manager stopped). */
  close(): void {
    this.stopListening();
  }
}
