// App controller: fetch → template → deploy through pluggable stage runners
// (app-pipeline.ts). With no runner for a stage kind, the App fails with
// "<stage> <i> (<kind>): not supported yet"; nothing ever reports success
// without having run. The Secrets its fetch stages read are watched one by
// one: a change (typically a placeholder being filled) fetches again at once,
// and so does a change of the registry configuration for Apps whose fetch failed.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { rfc3339 } from '../../runtime/conditions.js';
import { objectKey, splitKey, type Informer } from '../../runtime/informer.js';
import { isConflict } from '../../runtime/kube-client.js';
import { ControllerOperator, type OperatorContext } from '../../runtime/operator.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import {
  NO_RUNNERS,
  planDelete,
  planFetch,
  runDelete,
  runPipeline,
  type PipelineFailure,
  type StageRunners,
} from '../app-pipeline.js';
import { syncPeriodMs } from '../duration.js';
import { reconcileTiming } from '../reconcile-timer.js';
import type { FetchSecretReader } from '../registry-fetch.js';
import {
  APP_PAUSED_DESCRIPTION,
  deleteFailedStatus,
  deletingStatus,
  fetchRejectedStatus,
  pausedStatus,
  reportsSameFailure,
  runCompletedStatus,
  runProgressStatus,
  runStartedStatus,
  fetchFailed,
  type RunStatus,
} from '../run-status.js';
import { fetchSecretNames } from '../secret-references.js';
import type { App } from '../types.js';
import { FetchSecretWatches } from './fetch-secret-watches.js';
import { APP_FINALIZER, Apps, AwaitingInput, RecentReports, appsInformer, type Kube } from './resources.js';

/** Upstream App defaults: syncPeriod 30s, and never less than 30s. */
export const APP_DEFAULT_SYNC_PERIOD_MS = 30_000;
export const APP_MIN_SYNC_PERIOD_MS = 30_000;

/** Stage runners, or a function making them with the reader of the controller's watched fetch Secrets. */
export type StageRunnersOption = StageRunners | ((readSecret: FetchSecretReader) => StageRunners);

/** The registry configuration: its changes make failed fetches run again. */
export interface RegistryConfigWatch {
  start(): void;
  onChange(listener: () => void): void;
  /** Closes the registry client's connections (idempotent). */
  close(): void;
}

export interface AppControllerOptions {
  /** Stage runners; none by default (every fetch stage reports "not supported yet"). */
  runners?: StageRunnersOption;
  registryConfig?: RegistryConfigWatch;
  now?: () => Date;
  /** Parent of the per-run work directories (default: the OS temp dir). */
  workRoot?: string;
}

export class AppController extends ControllerOperator {
  private apps!: Informer<Kube<App>>;
  private readonly runners: StageRunners;
  private readonly now: () => Date;
  /** Keys whose fetch Secrets changed since their last run. */
  private readonly forced = new Set<string>();
  /** Generation each key last ran for in this process, to ignore a cache that lags our own writes. */
  private readonly ranFor = new Map<string, { uid: string; generation: number }>();
  private readonly reported = new RecentReports();
  private readonly awaitingInput = new AwaitingInput();
  private readonly fetchSecrets: FetchSecretWatches;

  constructor(
    ctx: OperatorContext,
    private readonly options: AppControllerOptions = {},
  ) {
    super(ctx, 'app');
    this.fetchSecrets = new FetchSecretWatches(ctx, 'app', this.log, (owners) => this.fetchAgain(owners));
    const runners = options.runners ?? NO_RUNNERS;
    this.runners =
      typeof runners === 'function' ? runners((ns, name) => this.fetchSecrets.read(ns, name)) : runners;
    this.now = options.now ?? (() => new Date());
  }

  protected async init(): Promise<void> {
    this.apps = this.watch(appsInformer(this.ctx));
    const track = (app: Kube<App>) =>
      this.fetchSecrets.track(
        objectKey(app),
        app.metadata?.namespace ?? '',
        fetchSecretNames(app.spec?.fetch),
      );
    this.apps.addHandlers({
      onAdd: track,
      onUpdate: (_old, app) => track(app),
      onDelete: (app) => this.fetchSecrets.forget(objectKey(app)),
    });
    const config = this.options.registryConfig;
    config?.start();
    config?.onChange(() =>
      this.fetchAgain(
        this.apps
          .list()
          .filter((a) => fetchFailed(a.status))
          .map(objectKey),
      ),
    );
  }

  override async stop(): Promise<void> {
    await super.stop();
    this.options.registryConfig?.close();
  }

  /** Runs these Apps again at once, whatever their sync period says. */
  private fetchAgain(keys: readonly string[]): void {
    for (const key of keys) {
      this.forced.add(key);
      this.queue.add(key);
    }
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const app = this.apps.get(namespace, name);
    const forced = this.forced.delete(key);
    if (!app) {
      this.ranFor.delete(key);
      this.reported.forget(key);
      this.awaitingInput.forget(key);
      return;
    }
    try {
      return await this.reconcileApp(key, app, forced);
    } catch (err) {
      // A write based on a cache that lags: the newer object's event queues the key again.
      if (isConflict(err)) {
        this.log.debug('conflict on a stale App; waiting for the newer version', { key });
        if (forced) this.forced.add(key);
        return;
      }
      throw err;
    }
  }

  private async reconcileApp(key: string, app: Kube<App>, forced: boolean): Promise<ReconcileResult | void> {
    const md = app.metadata ?? {};
    const generation = md.generation;
    const status: RunStatus | undefined = app.status;
    if (md.deletionTimestamp) return this.reconcileDelete(app);

    if (!md.finalizers?.includes(APP_FINALIZER)) await this.addFinalizer(Apps, app, APP_FINALIZER);

    if (app.spec?.paused === true || app.spec?.canceled === true) {
      await this.writeStatus(Apps, app, pausedStatus(status, generation, APP_PAUSED_DESCRIPTION));
      return;
    }

    const fetchPlan = planFetch(app.spec, this.runners);
    if (!fetchPlan.ok) {
      // Known without running anything; rewriting the same failure would only move timestamps.
      const failure = fetchPlan.failure;
      if (reportsSameFailure(status, generation, failure)) return;
      if (this.reported.has(key, md.uid, generation, failure.message)) return;
      await this.writeStatus(Apps, app, fetchRejectedStatus(status, generation, failure, this.now));
      this.reported.remember(key, md.uid, generation, failure.message);
      this.reportFailure(app, failure);
      return;
    }

    const period = syncPeriodMs(app.spec?.syncPeriod, {
      defaultMs: APP_DEFAULT_SYNC_PERIOD_MS,
      minimumMs: APP_MIN_SYNC_PERIOD_MS,
    });
    const timing = reconcileTiming({
      generation,
      status,
      syncPeriodMs: period,
      now: this.now(),
      forced,
      failureAwaitsInputChange: this.awaitingInput.matches(key, md.uid, generation),
    });
    if (!timing.due) return { requeueAfterMs: timing.afterMs };
    const ran = this.ranFor.get(key);
    if (
      !forced &&
      timing.reason !== 'period' &&
      timing.reason !== 'failure-backoff' &&
      ran?.uid === md.uid &&
      ran?.generation === generation
    ) {
      // We ran this generation already; the cache has not caught up with our status writes.
      return;
    }
    this.ranFor.set(key, { uid: md.uid ?? '', generation: generation ?? 0 });
    const final = await this.run(app, status);
    const next = reconcileTiming({
      generation,
      status: final,
      syncPeriodMs: period,
      now: this.now(),
      failureAwaitsInputChange: this.awaitingInput.matches(key, md.uid, generation),
    });
    return next.due ? { requeueAfterMs: 1000 } : { requeueAfterMs: next.afterMs };
  }

  /** One fetch → template → deploy run, publishing progress in the status. */
  private async run(app: Kube<App>, status: RunStatus | undefined): Promise<RunStatus> {
    const md = app.metadata ?? {};
    let current = runStartedStatus(status, md.generation, this.now);
    await this.writeStatus(Apps, app, current);
    const workDir = await mkdtemp(join(this.options.workRoot ?? tmpdir(), 'regcred-app-'));
    try {
      const result = await runPipeline({
        namespace: md.namespace ?? '',
        appName: md.name ?? '',
        spec: app.spec ?? {},
        runners: this.runners,
        workDir,
        mkdir: async (p) => {
          await mkdir(p, { recursive: true });
        },
        now: () => rfc3339(this.now()),
        progress: async (partial) => {
          const next = runProgressStatus(current, partial);
          await this.writeStatus(Apps, { ...app, status: current }, next);
          current = next;
        },
      });
      const final = runCompletedStatus(current, md.generation, result, this.now);
      await this.writeStatus(Apps, { ...app, status: current }, final);
      this.awaitingInput.record(
        objectKey(app),
        md.uid,
        md.generation,
        result.failure?.awaitsInputChange === true,
      );
      if (result.failure) this.reportFailure(app, result.failure);
      return final;
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  private async reconcileDelete(app: Kube<App>): Promise<ReconcileResult | void> {
    const md = app.metadata ?? {};
    if (!md.finalizers?.includes(APP_FINALIZER)) return;
    const status: RunStatus | undefined = app.status;
    const plan = planDelete(app.spec, status, this.runners);
    if (plan.action === 'fail') {
      const next = deleteFailedStatus(status, md.generation, plan.failure, this.now);
      if (await this.writeStatus(Apps, app, next)) this.reportFailure(app, plan.failure, 'DeleteFailed');
      return;
    }
    if (plan.action === 'run') {
      const deleting = deletingStatus(status, md.generation, this.now);
      await this.writeStatus(Apps, app, deleting);
      const failure = await runDelete({
        namespace: md.namespace ?? '',
        appName: md.name ?? '',
        spec: app.spec ?? {},
        runners: plan.runners,
      });
      if (failure) {
        await this.writeStatus(
          Apps,
          { ...app, status: deleting },
          deleteFailedStatus(deleting, md.generation, failure, this.now),
        );
        this.reportFailure(app, failure, 'DeleteFailed');
        return { requeueAfterMs: 30_000 };
      }
    } else {
      this.log.debug('removing App finalizer', { app: `${md.namespace}/${md.name}`, reason: plan.reason });
    }
    await this.removeFinalizer(Apps, app, APP_FINALIZER);
  }

  private reportFailure(app: KubernetesObject, failure: PipelineFailure, reason = 'ReconcileFailed'): void {
    const md = app.metadata ?? {};
    this.log.info(reason === 'DeleteFailed' ? 'App delete failed' : 'App reconcile failed', {
      app: `${md.namespace}/${md.name}`,
      phase: failure.phase,
      error: failure.message,
    });
    this.ctx.events.event(app, 'Warning', reason, failure.message);
  }
}
