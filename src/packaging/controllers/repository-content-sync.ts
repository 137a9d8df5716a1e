// Applies fetched repository content: the Packages and PackageMetadatas of
// `packages/` are created or updated in the repository's namespace (with the
// package-repository-ref annotation), and the ones this repository made
// earlier but no longer has are deleted. repository-content.ts decides
// (validation, two repositories giving one object, pruning); this writes.
// Invalid content or a conflict writes nothing at all.

import type { KubeClient, ResourceType } from '../../runtime/kube-client.js';
import type { Logger } from '../../runtime/logger.js';
import type { StageOutcome } from '../app-pipeline.js';
import {
  planRepositorySync,
  processRepositoryContent,
  type ExistingObject,
  type RepositoryObject,
} from '../repository-content.js';
import { readRepositoryDocuments } from '../repository-files.js';
import { readImagesLock, RelocationError } from '../bundle-relocation.js';
import { IMAGES_LOCK_PATH, imageResolution, resolvePackageImages } from '../relocation.js';
import type { PackageRepository } from '../types.js';
import type { RepositoryContentSync } from './package-repository.js';
import { PackageMetadatas, Packages, type Kube } from './resources.js';

const resourceFor = (kind: string): ResourceType => (kind === 'Package' ? Packages : PackageMetadatas);

export class ApiRepositoryContentSync implements RepositoryContentSync {
  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
  ) {}

  async sync(pkgr: Kube<PackageRepository>, directory: string): Promise<StageOutcome> {
    const namespace = pkgr.metadata?.namespace ?? '';
    const repo = { namespace, name: pkgr.metadata?.name ?? '' };
    const read = await readRepositoryDocuments(directory, { owner: namespace });
    if (!read.ok) return { exitCode: 1, error: read.message };
    // Package image references that the bundle's (relocated) images.yml lists are fetched from where it says.
    let resolved = 0;
    try {
      const lock = await readImagesLock(directory, namespace);
      if (lock) resolved = resolvePackageImages(read.documents, imageResolution(lock));
    } catch (err) {
      if (err instanceof RelocationError) return { exitCode: 1, error: err.message };
      throw err;
    }
    const content = processRepositoryContent(repo, read.documents, read.sources);
    if (!content.ok) return { exitCode: 1, error: content.message };

    const existing = [
      ...(await this.listExisting(Packages, namespace)),
      ...(await this.listExisting(PackageMetadatas, namespace)),
    ];
    const plan = planRepositorySync(repo, existing, content.objects);
    if (plan.conflicts.length > 0) return { exitCode: 1, error: plan.conflicts.join('\n') };

    for (const object of plan.create) {
      await this.client.create(resourceFor(object.kind), {
        apiVersion: object.apiVersion,
        kind: object.kind,
        metadata: { ...object.metadata, namespace },
        spec: object.spec,
      } as Kube<RepositoryObject>);
    }
    for (const { existing: current, incoming } of plan.update) {
      // A PUT guarded by the resourceVersion just listed: a concurrent writer makes this run fail and retry.
      await this.client.replace(resourceFor(incoming.kind), {
        ...current,
        apiVersion: incoming.apiVersion,
        kind: incoming.kind,
        metadata: {
          ...current.metadata,
          labels: incoming.metadata?.labels,
          annotations: incoming.metadata?.annotations,
        },
        spec: incoming.spec,
      } as Kube<RepositoryObject>);
    }
    for (const { kind, name } of plan.prune) {
      const uid = existing.find((o) => o.kind === kind && o.metadata.name === name)?.metadata.uid;
      await this.client.delete(resourceFor(kind), namespace, name, { uid });
    }
    const summary =
      `${content.packages.length} Packages and ${content.packageMetadatas.length} PackageMetadatas: ` +
      `${plan.create.length} created, ${plan.update.length} updated, ${plan.unchanged} unchanged, ` +
      `${plan.keptByOther} provided by another repository, ${plan.prune.length} deleted` +
      (resolved > 0 ? `; ${resolved} image references resolved from ${IMAGES_LOCK_PATH}` : '');
    if (plan.create.length + plan.update.length + plan.prune.length > 0) {
      this.log.info('applied repository content', { pkgr: `${namespace}/${repo.name}`, summary });
    }
    return { exitCode: 0, stdout: summary };
  }

  private async listExisting(rt: ResourceType, namespace: string): Promise<ExistingObject[]> {
    const items: ExistingObject[] = [];
    let cont: string | undefined;
    do {
      const page = await this.client.list<Kube<RepositoryObject>>(rt, {
        namespace,
        limit: 500,
        continue: cont,
      });
      for (const item of page.items) {
        if (!item.metadata?.name) continue;
        items.push({ ...item, kind: rt.kind as 'Package' | 'PackageMetadata' } as ExistingObject);
      }
      cont = page.continue;
    } while (cont);
    return items;
  }
}
