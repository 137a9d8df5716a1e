// App controller: fetch → template → deploy through pluggable stage runners
// (app-pipeline.ts). With no runner for a stage kind, the App fails with
// "<stage> <i> (<kind>): not supported yet"; nothing ever reports success
// without having run. The Secrets its fetch stages read are watched one by
// one: a change (typically a placeholder being filled) fetches again at once,
// and so does a change of the registry configuration for Apps whose fetch failed.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rfc3339 } from '../../runtime/conditions.js';
import { objectKey } from '../../runtime/informer.js';
import type { OperatorContext } from '../../runtime/operator.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import { planDelete, planFetch, runDelete, runPipeline } from '../app-pipeline.js';
import { syncPeriodMs } from '../duration.js';
import {
  APP_PAUSED_DESCRIPTION,
  deleteFailedStatus,
  deletingStatus,
  pausedStatus,
  runCompletedStatus,
  runProgressStatus,
  runStartedStatus,
  type RunStatus,
} from '../run-status.js';
import { fetchSecretNames } from '../secret-references.js';
import type { App } from '../types.js';
import { FetchingController, type FetchingControllerOptions } from './fetching-controller.js';
import { APP_FINALIZER, Apps, appsInformer, type Kube } from './resources.js';

/** Upstream App defaults: syncPeriod 30s, and never less than 30s. */
export const APP_DEFAULT_SYNC_PERIOD_MS = 30_000;
export const APP_MIN_SYNC_PERIOD_MS = 30_000;

export type AppControllerOptions = FetchingControllerOptions;

/** Reasons to run that a run already made for this generation in this process answers. */
const APP_SKIP_IF_RAN_FOR = ['generation', 'never-run', 'interrupted'] as const;

export class AppController extends FetchingController<Kube<App>> {
  constructor(ctx: OperatorContext, options: AppControllerOptions = {}) {
    super(ctx, 'app', 'App', options);
  }

  protected async init(): Promise<void> {
    this.watchFetching(appsInformer(this.ctx), (app) => fetchSecretNames(app.spec?.fetch));
  }

  protected reconcileObject(key: string, app: Kube<App>, forced: boolean): Promise<ReconcileResult | void> {
    return this.reconcileApp(key, app, forced);
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
    if (!fetchPlan.ok) return this.rejectFetch(Apps, key, app, fetchPlan.failure);

    const period = syncPeriodMs(app.spec?.syncPeriod, {
      defaultMs: APP_DEFAULT_SYNC_PERIOD_MS,
      minimumMs: APP_MIN_SYNC_PERIOD_MS,
    });
    const timing = this.timeToRun(key, app, period, forced, APP_SKIP_IF_RAN_FOR);
    if (!timing.run) return timing.result;
    const final = await this.run(app, status);
    return this.nextRun(key, app, final, period);
  }

  /** One fetch → template → deploy run, publishing progress in the status. */
  private async run(app: Kube<App>, status: RunStatus | undefined): Promise<RunStatus> {
    const md = app.metadata ?? {};
    let current = runStartedStatus(status, md.generation, this.now);
    await this.writeStatus(Apps, app, current);
    const workDir = await mkdtemp(join(this.fetchOptions.workRoot ?? tmpdir(), 'regcred-app-'));
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
      // Only now has this generation run: a failure before here is retried as a run.
      this.recordRun(objectKey(app), app);
      this.awaitingInput.record(
        objectKey(app),
        md.uid,
        md.generation,
        result.failure?.awaitsInputChange === true,
      );
      this.reportOutcome(objectKey(app), app, status, result.failure);
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
}
