// Which Secrets the fetch of an App or PackageRepository reads, and the
// reverse index (Secret → owners) that turns a change of one Secret into the
// owners to fetch again. Pure: the controllers start and stop the Secret
// watches from what `SecretReferences.set` reports.

import { fetchStageSecretName } from './app-pipeline.js';
import { fetchStageKind, repositoryFetchWithPlaceholder } from './fetch-secrets.js';
import type { FetchStage, PackageRepository } from './types.js';

/**
 * Names of the Secrets fetch stages read: each stage's secretRef (image,
 * imgpkgBundle, http, git, helmChart.repository) and inline `pathsFrom`
 * secretRefs. Sorted, without duplicates.
 */
export function fetchSecretNames(stages: readonly FetchStage[] | undefined): string[] {
  const names = new Set<string>();
  for (const stage of stages ?? []) {
    const name = fetchStageSecretName(stage);
    if (name) names.add(name);
    if (fetchStageKind(stage) === 'inline') {
      const pathsFrom = stage.inline?.['pathsFrom'];
      for (const source of Array.isArray(pathsFrom) ? (pathsFrom as unknown[]) : []) {
        const ref = (source as { secretRef?: { name?: unknown } } | null)?.secretRef?.name;
        if (typeof ref === 'string' && ref !== '') names.add(ref);
      }
    }
  }
  return [...names].sort();
}

/** The Secrets a PackageRepository's fetch reads, its `<name>-fetch-0` placeholder included. */
export function repositorySecretNames(pkgr: PackageRepository): string[] {
  if (!pkgr.spec?.fetch) return [];
  return fetchSecretNames([repositoryFetchWithPlaceholder(pkgr)]);
}

/** What a change of references means for the watches: start the first, stop the last. */
export interface ReferenceChange {
  /** Secrets nobody referenced before. */
  acquired: string[];
  /** Secrets nobody references any more. */
  released: string[];
}

/**
 * Owner → Secrets and Secret → owners, both ways. Keys are opaque strings
 * (the controllers use `<namespace>/<name>` for both).
 */
export class SecretReferences {
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly bySecret = new Map<string, Set<string>>();

  /** Records that `owner` now references exactly `secrets`. */
  set(owner: string, secrets: Iterable<string>): ReferenceChange {
    const next = new Set(secrets);
    const previous = this.byOwner.get(owner) ?? new Set<string>();
    const change: ReferenceChange = { acquired: [], released: [] };
    for (const secret of previous) {
      if (next.has(secret)) continue;
      const owners = this.bySecret.get(secret);
      owners?.delete(owner);
      if (owners?.size === 0) {
        this.bySecret.delete(secret);
        change.released.push(secret);
      }
    }
    for (const secret of next) {
      if (previous.has(secret)) continue;
      let owners = this.bySecret.get(secret);
      if (!owners) {
        owners = new Set();
        this.bySecret.set(secret, owners);
        change.acquired.push(secret);
      }
      owners.add(owner);
    }
    if (next.size === 0) this.byOwner.delete(owner);
    else this.byOwner.set(owner, next);
    change.acquired.sort();
    change.released.sort();
    return change;
  }

  /** Drops every reference of `owner`. */
  delete(owner: string): ReferenceChange {
    return this.set(owner, []);
  }

  /** Owners that reference `secret`, sorted. */
  ownersOf(secret: string): string[] {
    return [...(this.bySecret.get(secret) ?? [])].sort();
  }

  secretsOf(owner: string): string[] {
    return [...(this.byOwner.get(owner) ?? [])].sort();
  }

  isReferenced(secret: string): boolean {
    return this.bySecret.has(secret);
  }

  get secretCount(): number {
    return this.bySecret.size;
  }
}
