// PackageInstall controller: picks the Package version, keeps the App of the
// same name in line with it (fetch secrets wired to placeholders or the
// annotation overrides), and mirrors the App's status. Every decision is in
// package-install-plan.ts; this class reads caches and performs writes.

import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import { splitKey, type Informer } from '../../runtime/informer.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../runtime/kube-client.js';
import { ControllerOperator, type OperatorContext } from '../../runtime/operator.js';
import { OutcomeEvents, settledFromStatus } from '../../runtime/outcome-events.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import { SecretsResource, namespacesInformer, placeholdersInformer } from '../../shared-informers.js';
import { DEFAULT_PACKAGE_INSTALL_SYNC_PERIOD } from '../app-builder.js';
import { syncPeriodMs, parseGoDuration } from '../duration.js';
import { placeholderSecret } from '../fetch-secrets.js';
import {
  appForUpdate,
  appSyncedForDeletion,
  candidatePackages,
  isControlledBy,
  needsKubernetesVersion,
  packageInstallStatus,
  planPackageInstall,
  type InstallPlanInput,
} from '../package-install-plan.js';
import { EXCLUDE_GLOBAL_PACKAGES_ANNOTATION, packageNamespaceVisibleTo } from '../package-visibility.js';
import { mirrorAppStatus } from '../pkgi-status.js';
import {
  PACKAGING_API_VERSION,
  type App,
  type Package,
  type PackageInstall,
  type PackageInstallStatus,
} from '../types.js';
import {
  Apps,
  NAMESPACE_INDEX,
  PACKAGE_INSTALL_FINALIZER,
  PackageInstalls,
  REF_NAME_INDEX,
  RecentReports,
  appsInformer,
  ownedBy,
  kube,
  ownerKeys,
  packageInstallsInformer,
  packagesInformer,
  type Kube,
} from './resources.js';

export interface PackageInstallControllerOptions {
  globalNamespace: string;
  /** syncPeriod of PackageInstalls that set none (and of their Apps); default 10m as upstream. */
  defaultSyncPeriod?: string;
  now?: () => Date;
}

const KUBERNETES_VERSION_TTL_MS = 10 * 60_000;

export class PackageInstallController extends ControllerOperator {
  private installs!: Informer<Kube<PackageInstall>>;
  private packages!: Informer<Kube<Package>>;
  private apps!: Informer<Kube<App>>;
  private namespaces!: Informer<V1Namespace>;
  private placeholders!: Informer<V1Secret>;
  private readonly now: () => Date;
  private readonly defaultSyncPeriod: string;
  private kubernetesVersion: { value: string | undefined; at: number } | undefined;
  private readonly written = new RecentReports();
  private readonly outcomes: OutcomeEvents;

  constructor(
    ctx: OperatorContext,
    private readonly options: PackageInstallControllerOptions,
  ) {
    super(ctx, 'packageinstall');
    this.outcomes = new OutcomeEvents(ctx.events);
    this.now = options.now ?? (() => new Date());
    this.defaultSyncPeriod = options.defaultSyncPeriod ?? DEFAULT_PACKAGE_INSTALL_SYNC_PERIOD;
  }

  protected async init(): Promise<void> {
    this.installs = this.watch(packageInstallsInformer(this.ctx));
    this.packages = this.watch(packagesInformer(this.ctx), (pkg, old) => this.installsSeeing(pkg, old));
    // The App has the PackageInstall's name; its status changes are mirrored.
    this.apps = this.watch(appsInformer(this.ctx), (app) => {
      const key = `${app.metadata?.namespace}/${app.metadata?.name}`;
      return this.installs.getByKey(key) ? [key] : [];
    });
    this.namespaces = this.watch(namespacesInformer(this.ctx), (ns, old) =>
      this.installsInNamespace(ns, old),
    );
    // A deleted (or changed) placeholder is put back by its PackageInstall.
    this.placeholders = this.watch(placeholdersInformer(this.ctx), (secret) =>
      ownerKeys(secret, 'PackageInstall'),
    );
  }

  /** PackageInstalls a Package change may affect: same refName, in its namespace or (global) any that sees it. */
  private installsSeeing(pkg: Kube<Package>, old?: Kube<Package>): string[] {
    const refNames = new Set([pkg.spec?.refName, old?.spec?.refName].filter((r): r is string => !!r));
    const pkgNamespace = pkg.metadata?.namespace ?? '';
    const keys: string[] = [];
    for (const refName of refNames) {
      for (const pkgi of this.installs.byIndex(REF_NAME_INDEX, refName)) {
        const ns = pkgi.metadata?.namespace ?? '';
        const annotations = this.namespaces.get(undefined, ns)?.metadata?.annotations;
        if (packageNamespaceVisibleTo(pkgNamespace, ns, annotations, this.options.globalNamespace)) {
          keys.push(`${ns}/${pkgi.metadata?.name}`);
        }
      }
    }
    return keys;
  }

  /** PackageInstalls of a namespace whose exclude-global-packages annotation appeared or went away. */
  private installsInNamespace(ns: V1Namespace, old?: V1Namespace): string[] {
    if (!old) return [];
    const had = EXCLUDE_GLOBAL_PACKAGES_ANNOTATION in (old.metadata?.annotations ?? {});
    const has = EXCLUDE_GLOBAL_PACKAGES_ANNOTATION in (ns.metadata?.annotations ?? {});
    if (had === has) return [];
    return this.installs
      .byIndex(NAMESPACE_INDEX, ns.metadata?.name ?? '')
      .map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const pkgi = this.installs.get(namespace, name);
    if (!pkgi) {
      this.written.forget(key);
      this.outcomes.forget(key);
      return;
    }
    try {
      if (pkgi.metadata?.deletionTimestamp) return await this.reconcileDelete(pkgi);
      return await this.reconcileInstall(key, pkgi);
    } catch (err) {
      if (isConflict(err) && !isAlreadyExists(err)) {
        // Our cache lags the object we wrote to; its newer version's event queues the key again.
        this.log.debug('conflict on a stale object; waiting for the newer version', { key });
        return;
      }
      throw err;
    }
  }

  private async reconcileInstall(key: string, pkgi: Kube<PackageInstall>): Promise<ReconcileResult | void> {
    const md = pkgi.metadata ?? {};
    const namespace = md.namespace ?? '';
    if (!md.finalizers?.includes(PACKAGE_INSTALL_FINALIZER)) {
      await this.addFinalizer(PackageInstalls, pkgi, PACKAGE_INSTALL_FINALIZER);
    }
    const input: InstallPlanInput = {
      pkgi,
      namespaced: this.packages.byIndex(NAMESPACE_INDEX, namespace),
      global: this.packages.byIndex(NAMESPACE_INDEX, this.options.globalNamespace),
      namespaceAnnotations: this.namespaces.get(undefined, namespace)?.metadata?.annotations,
      globalNamespace: this.options.globalNamespace,
      app: this.apps.get(namespace, md.name ?? ''),
      ownedPlaceholders: ownedBy(this.placeholders.byIndex('namespace', namespace), md.uid),
      defaultSyncPeriod: this.defaultSyncPeriod,
    };
    if (!pkgi.spec?.cluster && needsKubernetesVersion(pkgi, candidatePackages(input))) {
      input.kubernetesVersion = await this.serverVersion();
    }
    const plan = planPackageInstall(input);

    if (plan.apply) {
      const owner = {
        apiVersion: pkgi.apiVersion ?? PACKAGING_API_VERSION,
        kind: pkgi.kind ?? 'PackageInstall',
        name: md.name ?? '',
        uid: md.uid ?? '',
      };
      const cached = new Set(this.placeholders.byIndex('namespace', namespace).map((s) => s.metadata?.name));
      for (const secretName of plan.apply.placeholders) {
        if (cached.has(secretName)) continue;
        await this.createPlaceholder(placeholderSecret(secretName, namespace, owner));
      }
      if (plan.apply.change === 'create') {
        try {
          await this.client.create(Apps, kube(plan.apply.app));
          this.log.info('created App', { app: `${namespace}/${md.name}`, version: plan.version });
        } catch (err) {
          // Created meanwhile (our cache lags): its event queues this PackageInstall again.
          if (!isAlreadyExists(err)) throw err;
        }
      } else if (plan.apply.change === 'update' && input.app) {
        await this.client.replace(Apps, kube(appForUpdate(input.app, plan.apply.app)));
        this.log.info('updated App', { app: `${namespace}/${md.name}`, version: plan.version });
      }
      for (const secretName of plan.apply.stalePlaceholders) {
        const secret = this.placeholders.get(namespace, secretName);
        await this.client.delete(SecretsResource, namespace, secretName, { uid: secret?.metadata?.uid });
        this.log.info('deleted placeholder no fetch stage uses', { secret: `${namespace}/${secretName}` });
      }
      for (const w of plan.warnings) this.ctx.events.event(pkgi, 'Warning', w.reason, w.message);
    }

    const status = packageInstallStatus(
      pkgi.status,
      md.generation,
      plan.status,
      { version: plan.version, lastAttemptedVersion: plan.lastAttemptedVersion },
      this.now,
    );
    if ((await this.writeStatusOnce(key, pkgi, status)) && !plan.apply) {
      // A failure of the PackageInstall itself (not its App's).
      this.log.info('PackageInstall reconcile failed', {
        pkgi: `${namespace}/${md.name}`,
        error: plan.status.usefulErrorMessage,
      });
    }
    // Reconciling (the App is running) and deletion are not outcomes: the next settled one is compared.
    if (plan.status.type === 'ReconcileSucceeded' || plan.status.type === 'ReconcileFailed') {
      const failed = plan.status.type === 'ReconcileFailed';
      this.outcomes.report(key, pkgi, settledFromStatus(pkgi.status), {
        failed,
        message: failed ? plan.status.usefulErrorMessage || plan.status.message : undefined,
      });
    }
    const defaultMs = parseGoDuration(this.defaultSyncPeriod) ?? 600_000;
    return { requeueAfterMs: syncPeriodMs(pkgi.spec?.syncPeriod, { defaultMs, minimumMs: 30_000 }) };
  }

  /**
   * writeStatus, except when this process wrote the same status moments ago
   * and the cache has not caught up yet (no duplicate no-op PATCH).
   */
  private async writeStatusOnce(
    key: string,
    pkgi: Kube<PackageInstall>,
    status: PackageInstallStatus,
  ): Promise<boolean> {
    const md = pkgi.metadata ?? {};
    const fingerprint = JSON.stringify({
      ...status,
      conditions: status.conditions?.map((c) => ({ ...c, lastTransitionTime: undefined })),
    });
    if (this.written.has(key, md.uid, md.generation, fingerprint)) return false;
    const wrote = await this.writeStatus(PackageInstalls, pkgi, status);
    if (wrote) this.written.remember(key, md.uid, md.generation, fingerprint);
    return wrote;
  }

  private async createPlaceholder(secret: ReturnType<typeof placeholderSecret>): Promise<void> {
    try {
      await this.client.create(SecretsResource, secret);
      this.log.info('created placeholder secret', {
        secret: `${secret.metadata.namespace}/${secret.metadata.name}`,
      });
    } catch (err) {
      // Create-only: an existing Secret of that name is used as it is, never overwritten.
      if (!isAlreadyExists(err)) throw err;
    }
  }

  private async reconcileDelete(pkgi: Kube<PackageInstall>): Promise<ReconcileResult | void> {
    const md = pkgi.metadata ?? {};
    if (!md.finalizers?.includes(PACKAGE_INSTALL_FINALIZER)) return;
    const namespace = md.namespace ?? '';
    const app = this.apps.get(namespace, md.name ?? '');
    if (!app || !isControlledBy(app, md.uid)) {
      // Gone, or not ours (never deleted by us): the PackageInstall can go.
      await this.removeFinalizer(PackageInstalls, pkgi, PACKAGE_INSTALL_FINALIZER);
      return;
    }
    const synced = appSyncedForDeletion(app, pkgi);
    if (synced) {
      await this.client.replace(Apps, kube(synced));
    } else if (!app.metadata?.deletionTimestamp) {
      try {
        await this.client.delete(Apps, namespace, md.name ?? '', { uid: app.metadata?.uid });
        this.log.info('deleting App of deleted PackageInstall', { app: `${namespace}/${md.name}` });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const decision = mirrorAppStatus({ app, deleting: true });
    await this.writeStatus(
      PackageInstalls,
      pkgi,
      packageInstallStatus(
        pkgi.status,
        md.generation,
        decision,
        { version: pkgi.status?.version, lastAttemptedVersion: pkgi.status?.lastAttemptedVersion },
        this.now,
      ),
    );
  }

  /** The API server's version (cached); undefined when it cannot be read. */
  private async serverVersion(): Promise<string | undefined> {
    const now = Date.now();
    if (this.kubernetesVersion && now - this.kubernetesVersion.at < KUBERNETES_VERSION_TTL_MS) {
      return this.kubernetesVersion.value;
    }
    try {
      const v = await this.client.request<{ gitVersion?: string }>('GET', '/version');
      this.kubernetesVersion = { value: v.gitVersion, at: now };
    } catch (err) {
      this.log.warn('could not read the Kubernetes version', {
        error: err instanceof Error ? err.message : String(err),
      });
      return undefined;
    }
    return this.kubernetesVersion.value;
  }
}
