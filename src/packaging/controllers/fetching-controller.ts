// What the App and PackageRepository controllers share: both fetch through the
// same stage runners, watch the Secrets their fetches read (a change fetches
// again at once), fetch again when the registry configuration changes, and
// keep the same per-key memories of what they ran and reported. A run that
// is due starts only when the shared FetchLimiter admits it (a slot, fair
// across namespaces, with the --fetch-timeout deadline and a disk share);
// otherwise the key waits without holding a worker and is queued again when
// its slot is reserved.

import type { KubernetesObject } from '@kubernetes/client-node';
import { objectKey, splitKey, type Informer } from '../../runtime/informer.js';
import { ControllerOperator, type OperatorContext } from '../../runtime/operator.js';
import { OutcomeEvents, settledFromStatus } from '../../runtime/outcome-events.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import type { ResourceType } from '../../runtime/kube-client.js';
import { NO_RUNNERS, type PipelineFailure, type StageRunners } from '../app-pipeline.js';
import type { FetchLimiter } from '../fetch-limiter.js';
import { reconcileTiming, type TimingReason } from '../reconcile-timer.js';
import type { FetchSecretReader } from '../registry-fetch.js';
import { fetchFailed, fetchRejectedStatus, reportsSameFailure, type RunStatus } from '../run-status.js';
import { FetchSecretWatches } from './fetch-secret-watches.js';
import { AwaitingInput, RecentReports } from './resources.js';

/** Stage runners, or a function making them with the reader of the controller's watched fetch Secrets. */
export type StageRunnersOption = StageRunners | ((readSecret: FetchSecretReader) => StageRunners);

/** The registry configuration: its changes make failed fetches run again. */
export interface RegistryConfigWatch {
  start(): void;
  onChange(listener: () => void): void;
  /** Closes the registry client's connections (idempotent). */
  close(): void;
}

export interface FetchingControllerOptions {
  /** Stage runners; none by default (every fetch stage reports "not supported yet"). */
  runners?: StageRunnersOption;
  registryConfig?: RegistryConfigWatch;
  now?: () => Date;
  /** Parent of the per-run work directories (default: the OS temp dir). */
  workRoot?: string;
  /** Fetch slots, deadline and disk shares, shared by the fetching controllers; none: unlimited. */
  limiter?: FetchLimiter;
}

/** When a key waiting for a fetch slot looks again if it was not woken (a safety net only). */
const SLOT_WAIT_RECHECK_MS = 60_000;

export abstract class FetchingController<
  T extends KubernetesObject & { status?: RunStatus },
> extends ControllerOperator {
  protected objects!: Informer<T>;
  protected readonly runners: StageRunners;
  protected readonly now: () => Date;
  /**
   * Keys whose fetch Secrets changed since their last run, each with a stamp
   * of the latest request: a reconcile clears only the request it saw, and
   * only when it returns normally, so neither an error nor a change during the
   * run loses it.
   */
  protected readonly forced = new Map<string, number>();
  private forcedStamp = 0;
  /**
   * Generation each key last ran for in this process, to ignore a cache that
   * lags our own writes. Recorded only once a run's outcome is written: a run
   * that failed before (status write, work dir) leaves nothing behind, so the
   * retry runs it.
   */
  protected readonly ranFor = new Map<string, { uid: string; generation: number }>();
  /** Keys whose run was admitted and has not recorded its outcome yet. */
  private readonly runsInFlight = new Set<string>();
  protected readonly reported = new RecentReports();
  protected readonly awaitingInput = new AwaitingInput();
  protected readonly fetchSecrets: FetchSecretWatches;
  private readonly outcomes: OutcomeEvents;

  constructor(
    ctx: OperatorContext,
    controllerName: string,
    private readonly kindName: string,
    protected readonly fetchOptions: FetchingControllerOptions,
  ) {
    super(ctx, controllerName);
    this.outcomes = new OutcomeEvents(ctx.events);
    this.fetchSecrets = new FetchSecretWatches(ctx, controllerName, this.log, (owners) =>
      this.fetchAgain(owners),
    );
    const runners = fetchOptions.runners ?? NO_RUNNERS;
    this.runners =
      typeof runners === 'function' ? runners((ns, name) => this.fetchSecrets.read(ns, name)) : runners;
    this.now = fetchOptions.now ?? (() => new Date());
  }

  /** Watches `informer`, the Secrets each object's fetch reads, and the registry configuration. */
  protected watchFetching(informer: Informer<T>, secretNamesOf: (obj: T) => Iterable<string>): void {
    this.objects = this.watch(informer);
    const track = (obj: T) =>
      this.fetchSecrets.track(objectKey(obj), obj.metadata?.namespace ?? '', [...secretNamesOf(obj)]);
    this.objects.addHandlers({
      onAdd: track,
      onUpdate: (_old, obj) => track(obj),
      onDelete: (obj) => this.fetchSecrets.forget(objectKey(obj)),
    });
    const config = this.fetchOptions.registryConfig;
    config?.start();
    config?.onChange(() =>
      this.fetchAgain(
        this.objects
          .list()
          .filter((o) => fetchFailed(o.status))
          .map(objectKey),
      ),
    );
  }

  override async stop(): Promise<void> {
    await super.stop();
    this.fetchOptions.registryConfig?.close();
  }

  /** Runs these objects again at once, whatever their sync period says. */
  protected fetchAgain(keys: readonly string[]): void {
    for (const key of keys) {
      this.forceRun(key);
      this.queue.add(key);
    }
  }

  /** Asks for a run at the key's next reconcile, whatever the timing says. */
  private forceRun(key: string): void {
    this.forced.set(key, ++this.forcedStamp);
  }

  /** Records that a run for this generation ended with its outcome written. */
  protected recordRun(key: string, obj: T): void {
    const md = obj.metadata ?? {};
    this.ranFor.set(key, { uid: md.uid ?? '', generation: md.generation ?? 0 });
    this.runsInFlight.delete(key);
  }

  /**
   * Reports a failure known before running anything (no runner for a stage,
   * say) once per generation: rewriting it would only move timestamps.
   */
  protected async rejectFetch(
    rt: ResourceType,
    key: string,
    obj: T,
    failure: PipelineFailure,
  ): Promise<void> {
    const md = obj.metadata ?? {};
    if (reportsSameFailure(obj.status, md.generation, failure)) return;
    if (this.reported.has(key, md.uid, md.generation, failure.message)) return;
    await this.writeStatus(rt, obj, fetchRejectedStatus(obj.status, md.generation, failure, this.now));
    this.reported.remember(key, md.uid, md.generation, failure.message);
    this.reportOutcome(key, obj, obj.status, failure);
  }

  /**
   * Once a run's outcome is written: a Warning when it failed (unless it failed
   * the same way last time), a Normal when it first succeeded or recovered.
   * `before` is the status the run started from.
   */
  protected reportOutcome(
    key: string,
    obj: T,
    before: RunStatus | undefined,
    failure?: PipelineFailure,
  ): void {
    if (failure) this.logFailure(obj, failure, 'ReconcileFailed');
    this.outcomes.report(
      key,
      obj,
      settledFromStatus(before),
      failure ? { failed: true, message: failure.message } : { failed: false },
    );
  }

  /**
   * Whether to run now (the sync timing), or when to look again. A run this
   * process already made for this generation is not repeated for the reasons
   * in `skipIfRanFor`: the cache has just not caught up with our status writes.
   */
  protected timeToRun(
    key: string,
    obj: T,
    periodMs: number,
    forced: boolean,
    skipIfRanFor: readonly TimingReason[],
  ): { run: true } | { run: false; result?: ReconcileResult } {
    const md = obj.metadata ?? {};
    const timing = reconcileTiming({
      generation: md.generation,
      status: obj.status,
      syncPeriodMs: periodMs,
      now: this.now(),
      forced,
      failureAwaitsInputChange: this.awaitingInput.matches(key, md.uid, md.generation),
    });
    if (!timing.due) return { run: false, result: { requeueAfterMs: timing.afterMs } };
    const ran = this.ranFor.get(key);
    if (
      !forced &&
      skipIfRanFor.includes(timing.reason) &&
      ran?.uid === md.uid &&
      ran?.generation === md.generation
    ) {
      return { run: false };
    }
    const limiter = this.fetchOptions.limiter;
    if (limiter && !limiter.admit(this.slotHolder(key), md.namespace ?? '', () => this.queue.add(key))) {
      if (forced) this.forceRun(key);
      this.log.debug('fetch waits for a slot', { key, waiting: limiter.waitingCount });
      return { run: false, result: { requeueAfterMs: SLOT_WAIT_RECHECK_MS } };
    }
    this.runsInFlight.add(key);
    return { run: true };
  }

  /** The key's name in the limiter shared with the other fetching controller. */
  private slotHolder(key: string): string {
    return `${this.controllerName}/${key}`;
  }

  /** When to run again after a run that ended with `final`. */
  protected nextRun(key: string, obj: T, final: RunStatus, periodMs: number): ReconcileResult {
    const md = obj.metadata ?? {};
    const next = reconcileTiming({
      generation: md.generation,
      status: final,
      syncPeriodMs: periodMs,
      now: this.now(),
      failureAwaitsInputChange: this.awaitingInput.matches(key, md.uid, md.generation),
    });
    return { requeueAfterMs: next.due ? 1000 : next.afterMs };
  }

  protected reportFailure(obj: T, failure: PipelineFailure, reason = 'ReconcileFailed'): void {
    this.logFailure(obj, failure, reason);
    this.ctx.events.event(obj, 'Warning', reason, failure.message);
  }

  private logFailure(obj: T, failure: PipelineFailure, reason: string): void {
    const md = obj.metadata ?? {};
    this.log.info(`${this.kindName} ${reason === 'DeleteFailed' ? 'delete' : 'reconcile'} failed`, {
      object: `${md.namespace}/${md.name}`,
      phase: failure.phase,
      error: failure.message,
    });
  }

  protected abstract reconcileObject(key: string, obj: T, forced: boolean): Promise<ReconcileResult | void>;

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const limiter = this.fetchOptions.limiter;
    if (!limiter) return this.reconcileKey(key);
    // A slot admitted during this reconcile is released when it ends (after the work dir is removed).
    return limiter.run(this.slotHolder(key), () => this.reconcileKey(key));
  }

  private async reconcileKey(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const obj = this.objects.get(namespace, name);
    const forcedStamp = this.forced.get(key);
    if (!obj) {
      this.fetchOptions.limiter?.forget(this.slotHolder(key));
      this.forced.delete(key);
      this.ranFor.delete(key);
      this.reported.forget(key);
      this.awaitingInput.forget(key);
      this.outcomes.forget(key);
      return;
    }
    let result: ReconcileResult | void;
    try {
      result = await this.reconcileObject(key, obj, forcedStamp !== undefined);
    } catch (err) {
      // A run that failed before writing its outcome left a Reconciling status (or none) that the
      // timing would wait on: the retry runs it again. A forced request stays for the retry too.
      if (this.runsInFlight.delete(key)) this.forceRun(key);
      throw err;
    }
    this.runsInFlight.delete(key);
    if (forcedStamp !== undefined && this.forced.get(key) === forcedStamp) this.forced.delete(key);
    return result;
  }
}
