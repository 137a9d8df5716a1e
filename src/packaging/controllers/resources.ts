// Resource types, informers and indexes shared by the packaging controllers.
// Informers are shared process-wide by name, so the PackageInstall and App
// controllers read the same App cache.

import type { KubernetesObject } from '@kubernetes/client-node';
import {
  AppKind,
  AppResource,
  PackageInstallKind,
  PackageInstallResource,
  PackageKind,
  PackageMetadataKind,
  PackageMetadataResource,
  PackageRepositoryKind,
  PackageRepositoryResource,
  PackageResource,
} from '../../../generated/index.js';
import { byNamespaceIndex, type Informer } from '../../runtime/informer.js';
import type { ResourceType } from '../../runtime/kube-client.js';
import type { OperatorContext } from '../../runtime/operator.js';
import type { App, Package, PackageInstall, PackageRepository } from '../types.js';

/** A packaging type as it comes out of an informer. */
export type Kube<T> = T & KubernetesObject;

/**
 * A packaging object built here, as the client's KubernetesObject (client-node
 * types metadata timestamps as Date, JSON carries strings).
 */
export function kube<T extends object>(obj: T): Kube<T> {
  return obj;
}

export const PackageInstalls: ResourceType = { ...PackageInstallResource, kind: PackageInstallKind };
export const PackageRepositories: ResourceType = {
  ...PackageRepositoryResource,
  kind: PackageRepositoryKind,
};
export const Packages: ResourceType = { ...PackageResource, kind: PackageKind };
export const PackageMetadatas: ResourceType = { ...PackageMetadataResource, kind: PackageMetadataKind };
export const Apps: ResourceType = { ...AppResource, kind: AppKind };

/** Upstream's finalizer names, so objects created by kapp-controller are handled alike. */
export const APP_FINALIZER = 'finalizers.kapp-ctrl.k14s.io/delete';
export const PACKAGE_INSTALL_FINALIZER = 'finalizers.packageinstall.packaging.carvel.dev/delete';
export const PACKAGE_REPOSITORY_FINALIZER = 'finalizers.packagerepository.packaging.carvel.dev/delete';

export const REF_NAME_INDEX = 'refName';
export const NAMESPACE_INDEX = 'namespace';

export function appsInformer(ctx: OperatorContext): Informer<Kube<App>> {
  const inf = ctx.informers.get<Kube<App>>('packaging:apps', {
    resource: Apps,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  return inf;
}

export function packageInstallsInformer(ctx: OperatorContext): Informer<Kube<PackageInstall>> {
  const inf = ctx.informers.get<Kube<PackageInstall>>('packaging:packageinstalls', {
    resource: PackageInstalls,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  if (!inf.hasIndex(REF_NAME_INDEX)) {
    inf.addIndex(REF_NAME_INDEX, (p) => {
      const ref = p.spec?.packageRef?.refName;
      return ref ? [ref] : [];
    });
  }
  if (!inf.hasIndex(NAMESPACE_INDEX)) inf.addIndex(NAMESPACE_INDEX, byNamespaceIndex);
  return inf;
}

export function packagesInformer(ctx: OperatorContext): Informer<Kube<Package>> {
  const inf = ctx.informers.get<Kube<Package>>('packaging:packages', {
    resource: Packages,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  if (!inf.hasIndex(NAMESPACE_INDEX)) inf.addIndex(NAMESPACE_INDEX, byNamespaceIndex);
  return inf;
}

export function packageRepositoriesInformer(ctx: OperatorContext): Informer<Kube<PackageRepository>> {
  const inf = ctx.informers.get<Kube<PackageRepository>>('packaging:packagerepositories', {
    resource: PackageRepositories,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  return inf;
}

/** Keys `<ns>/<name>` of the owners of `kind` named in an object's ownerReferences. */
export function ownerKeys(obj: KubernetesObject, kind: string): string[] {
  const ns = obj.metadata?.namespace;
  return (obj.metadata?.ownerReferences ?? [])
    .filter((r) => r.kind === kind)
    .map((r) => (ns ? `${ns}/${r.name}` : r.name));
}

/** Names of the Secrets of a cache list that name `uid` in their ownerReferences. */
export function ownedBy(objects: readonly KubernetesObject[], uid: string | undefined): string[] {
  if (!uid) return [];
  return objects
    .filter((o) => (o.metadata?.ownerReferences ?? []).some((r) => r.uid === uid))
    .map((o) => o.metadata?.name ?? '')
    .filter((n) => n !== '');
}

/**
 * Keys whose last run failed in a way only a watched input can fix (see
 * StageOutcome.awaitsInputChange), per uid and generation. In memory: after a
 * restart such a failure is retried once, then remembered again.
 */
export class AwaitingInput {
  private readonly entries = new Map<string, string>();

  record(key: string, uid: string | undefined, generation: number | undefined, awaits: boolean): void {
    if (awaits) this.entries.set(key, `${uid ?? ''}/${generation ?? 0}`);
    else this.entries.delete(key);
  }

  matches(key: string, uid: string | undefined, generation: number | undefined): boolean {
    return this.entries.get(key) === `${uid ?? ''}/${generation ?? 0}`;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}

/**
 * Outcomes this process reported recently, per key. The informer cache lags
 * our own status writes by a few milliseconds; a reconcile that runs in that
 * window (e.g. queued by our finalizer write) would report the same outcome
 * again. Entries expire quickly: after that, the cache is the truth again.
 */
export class RecentReports {
  private readonly entries = new Map<string, { uid: string; generation: number; what: string; at: number }>();

  constructor(private readonly ttlMs = 10_000) {}

  remember(key: string, uid: string | undefined, generation: number | undefined, what: string): void {
    this.entries.set(key, { uid: uid ?? '', generation: generation ?? 0, what, at: Date.now() });
  }

  has(key: string, uid: string | undefined, generation: number | undefined, what: string): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    if (Date.now() - e.at >= this.ttlMs) {
      this.entries.delete(key);
      return false;
    }
    return e.uid === (uid ?? '') && e.generation === (generation ?? 0) && e.what === what;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
