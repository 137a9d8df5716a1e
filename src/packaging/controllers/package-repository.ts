// PackageRepository controller: the `<name>-fetch-0` placeholder for an
// image / imgpkgBundle fetch without secretRef (create-only), the fetch of the
// repository content through the same fetch runners as Apps, then the
// content step (Packages and PackageMetadatas) behind RepositoryContentSync.
// The Secret the fetch reads is watched: a change (the placeholder being
// filled, say) fetches again at once, and so does a change of the registry
// configuration for repositories whose fetch failed.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { rfc3339 } from '../../runtime/conditions.js';
import { objectKey, type Informer } from '../../runtime/informer.js';
import { isAlreadyExists } from '../../runtime/kube-client.js';
import type { OperatorContext } from '../../runtime/operator.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import { SecretsResource, placeholdersInformer } from '../../shared-informers.js';
import {
  pipelineFailure,
  planFetch,
  runFetchPhase,
  stageStatus,
  type PipelineFailure,
  type PipelineResult,
  type StageOutcome,
} from '../app-pipeline.js';
import { syncPeriodMs } from '../duration.js';
import {
  isPlaceholderName,
  placeholderSecret,
  repositoryFetchWithPlaceholder,
  repositoryPlaceholder,
} from '../fetch-secrets.js';
import { PACKAGE_REPOSITORY_REF_ANNOTATION, repositoryRefValue } from '../repository-content.js';
import {
  REPOSITORY_PAUSED_DESCRIPTION,
  deleteFailedStatus,
  deletingStatus,
  pausedStatus,
  reconcileFailedStatus,
  runCompletedStatus,
  runProgressStatus,
  runStartedStatus,
  type RunStatus,
} from '../run-status.js';
import { repositorySecretNames } from '../secret-references.js';
import { PACKAGING_API_VERSION, type AppSpec, type PackageRepository } from '../types.js';
import { FetchingController, type FetchingControllerOptions } from './fetching-controller.js';
import {
  PACKAGE_REPOSITORY_FINALIZER,
  PackageMetadatas,
  PackageRepositories,
  Packages,
  ownedBy,
  ownerKeys,
  packageRepositoriesInformer,
  type Kube,
} from './resources.js';

/** Upstream PackageRepository sync period: default 10m (kapp-controller's), never below 30s. */
export const REPOSITORY_DEFAULT_SYNC_PERIOD_MS = 600_000;
export const REPOSITORY_MIN_SYNC_PERIOD_MS = 30_000;

/** Reasons to run that a run already made for this generation in this process answers. */
const REPOSITORY_SKIP_IF_RAN_FOR = ['generation', 'never-run'] as const;

/**
 * Turns fetched repository content into Packages and PackageMetadatas in the
 * repository's namespace (repository-content.ts decides; this applies).
 */
export interface RepositoryContentSync {
  sync(pkgr: Kube<PackageRepository>, directory: string): Promise<StageOutcome>;
}

const CONTENT_NOT_SUPPORTED: RepositoryContentSync = {
  sync: async () => ({ exitCode: 1, error: 'applying repository content: not supported yet' }),
};

export interface PackageRepositoryControllerOptions extends FetchingControllerOptions {
  content?: RepositoryContentSync;
  now?: () => Date;
  workRoot?: string;
}

export class PackageRepositoryController extends FetchingController<Kube<PackageRepository>> {
  private placeholders!: Informer<V1Secret>;
  private readonly content: RepositoryContentSync;

  constructor(ctx: OperatorContext, options: PackageRepositoryControllerOptions = {}) {
    super(ctx, 'packagerepository', 'PackageRepository', options);
    this.content = options.content ?? CONTENT_NOT_SUPPORTED;
  }

  protected async init(): Promise<void> {
    this.watchFetching(packageRepositoriesInformer(this.ctx), repositorySecretNames);
    // Its owner puts a deleted placeholder back.
    this.placeholders = this.watch(placeholdersInformer(this.ctx), (secret) =>
      ownerKeys(secret, 'PackageRepository'),
    );
  }

  protected async reconcileObject(
    key: string,
    pkgr: Kube<PackageRepository>,
    forced: boolean,
  ): Promise<ReconcileResult | void> {
    if (pkgr.metadata?.deletionTimestamp) return this.reconcileDelete(pkgr);
    return this.reconcileRepository(key, pkgr, forced);
  }

  private async reconcileRepository(
    key: string,
    pkgr: Kube<PackageRepository>,
    forced: boolean,
  ): Promise<ReconcileResult | void> {
    const md = pkgr.metadata ?? {};
    const namespace = md.namespace ?? '';
    const generation = md.generation;
    const status = (pkgr as { status?: RunStatus }).status;
    if (!md.finalizers?.includes(PACKAGE_REPOSITORY_FINALIZER)) {
      await this.addFinalizer(PackageRepositories, pkgr, PACKAGE_REPOSITORY_FINALIZER);
    }
    if (pkgr.spec?.paused === true) {
      await this.writeStatus(
        PackageRepositories,
        pkgr,
        pausedStatus(status, generation, REPOSITORY_PAUSED_DESCRIPTION),
      );
      return;
    }

    // The placeholder (create-only), and removal of one no longer used (a secretRef was added).
    const wanted = repositoryPlaceholder(pkgr);
    const inNamespace = this.placeholders.byIndex('namespace', namespace);
    if (wanted && !inNamespace.some((s) => s.metadata?.name === wanted)) {
      const owner = {
        apiVersion: pkgr.apiVersion ?? PACKAGING_API_VERSION,
        kind: pkgr.kind ?? 'PackageRepository',
        name: md.name ?? '',
        uid: md.uid ?? '',
      };
      try {
        await this.client.create(SecretsResource, placeholderSecret(wanted, namespace, owner));
        this.log.info('created placeholder secret', { secret: `${namespace}/${wanted}` });
      } catch (err) {
        if (!isAlreadyExists(err)) {
          // Beyond upstream (which ignores it): the failure is reported.
          const message = `Creating placeholder secret ${wanted}: ${err instanceof Error ? err.message : String(err)}`;
          if (
            await this.writeStatus(
              PackageRepositories,
              pkgr,
              reconcileFailedStatus(status, generation, message, this.now),
            )
          ) {
            this.ctx.events.event(pkgr, 'Warning', 'ReconcileFailed', message);
          }
          throw err;
        }
      }
    }
    for (const stale of ownedBy(inNamespace, md.uid)) {
      if (stale === wanted || !isPlaceholderName(md.name ?? '', stale)) continue;
      const secret = this.placeholders.get(namespace, stale);
      await this.client.delete(SecretsResource, namespace, stale, { uid: secret?.metadata?.uid });
      this.log.info('deleted placeholder the repository no longer uses', { secret: `${namespace}/${stale}` });
    }

    const spec: AppSpec = { fetch: [repositoryFetchWithPlaceholder(pkgr)] };
    const planned = planFetch(spec, this.runners);
    if (!planned.ok) return this.rejectFetch(PackageRepositories, key, pkgr, planned.failure);

    const period = syncPeriodMs(pkgr.spec?.syncPeriod, {
      defaultMs: REPOSITORY_DEFAULT_SYNC_PERIOD_MS,
      minimumMs: REPOSITORY_MIN_SYNC_PERIOD_MS,
    });
    const timing = this.timeToRun(key, pkgr, period, forced, REPOSITORY_SKIP_IF_RAN_FOR);
    if (!timing.run) return timing.result;
    const final = await this.run(pkgr, status, spec);
    return this.nextRun(key, pkgr, final, period);
  }

  private async run(
    pkgr: Kube<PackageRepository>,
    status: RunStatus | undefined,
    spec: AppSpec,
  ): Promise<RunStatus> {
    const md = pkgr.metadata ?? {};
    let current = runStartedStatus(status, md.generation, this.now);
    await this.writeStatus(PackageRepositories, pkgr, current);
    const workDir = await mkdtemp(join(this.fetchOptions.workRoot ?? tmpdir(), 'regcred-pkgr-'));
    try {
      const now = () => rfc3339(this.now());
      const result: PipelineResult = {};
      const fetched = await runFetchPhase({
        namespace: md.namespace ?? '',
        spec,
        runners: this.runners,
        workDir,
        mkdir: async (p) => {
          await mkdir(p, { recursive: true });
        },
        now,
      });
      result.fetch = fetched.status;
      if (fetched.failure) {
        result.failure = fetched.failure;
      } else {
        const progress = runProgressStatus(current, result);
        await this.writeStatus(PackageRepositories, { ...pkgr, status: current }, progress);
        current = progress;
        const startedAt = now();
        let outcome: StageOutcome;
        try {
          outcome = await this.content.sync(pkgr, workDir);
        } catch (err) {
          outcome = { exitCode: 1, error: err instanceof Error ? err.message : String(err) };
        }
        result.deploy = stageStatus(outcome, { startedAt, updatedAt: now() }, { finished: true });
        if (outcome.exitCode !== 0)
          result.failure = pipelineFailure('deploy', outcome.error ?? `exit code ${outcome.exitCode}`);
      }
      const final = runCompletedStatus(current, md.generation, result, this.now);
      await this.writeStatus(PackageRepositories, { ...pkgr, status: current }, final);
      // Only now has this generation run: a failure before here is retried as a run.
      this.recordRun(objectKey(pkgr), pkgr);
      this.awaitingInput.record(
        objectKey(pkgr),
        md.uid,
        md.generation,
        result.failure?.awaitsInputChange === true,
      );
      this.reportOutcome(objectKey(pkgr), pkgr, status, result.failure);
      return final;
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * Removes the Packages and PackageMetadatas this repository created (by
   * their package-repository-ref annotation), then the finalizer. The
   * placeholder goes by garbage collection (ownerReference).
   */
  private async reconcileDelete(pkgr: Kube<PackageRepository>): Promise<ReconcileResult | void> {
    const md = pkgr.metadata ?? {};
    if (!md.finalizers?.includes(PACKAGE_REPOSITORY_FINALIZER)) return;
    const namespace = md.namespace ?? '';
    const status = (pkgr as { status?: RunStatus }).status;
    const deleting = deletingStatus(status, md.generation, this.now);
    await this.writeStatus(PackageRepositories, pkgr, deleting);
    const ref = repositoryRefValue({ namespace, name: md.name ?? '' });
    try {
      for (const rt of [Packages, PackageMetadatas]) {
        const { items } = await this.client.list<KubernetesObject>(rt, { namespace, metadataOnly: true });
        for (const obj of items) {
          if (obj.metadata?.annotations?.[PACKAGE_REPOSITORY_REF_ANNOTATION] !== ref) continue;
          await this.client.delete(rt, namespace, obj.metadata?.name ?? '', { uid: obj.metadata?.uid });
        }
      }
    } catch (err) {
      const failure: PipelineFailure = pipelineFailure(
        'delete',
        `deleting the repository's packages: ${err instanceof Error ? err.message : String(err)}`,
      );
      await this.writeStatus(
        PackageRepositories,
        { ...pkgr, status: deleting },
        deleteFailedStatus(deleting, md.generation, failure, this.now),
      );
      this.reportFailure(pkgr, failure, 'DeleteFailed');
      throw err;
    }
    await this.removeFinalizer(PackageRepositories, pkgr, PACKAGE_REPOSITORY_FINALIZER);
  }
}
