import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { SecretExport } from '../../../generated/index.js';
import { splitKey, type Informer } from '../../runtime/informer.js';
import { isNotFound } from '../../runtime/kube-client.js';
import { ControllerOperator, replaceNulls, type OperatorContext } from '../../runtime/operator.js';
import {
  namespacesInformer,
  placeholdersInformer,
  secretExportsInformer,
  SecretsResource,
  wrongTypePlaceholdersInformer,
} from '../../shared-informers.js';
import { STATUS_ANNOTATION } from '../annotations.js';
import { isImportCopy } from '../import.js';
import { matchExportToNamespace } from '../namespace-match.js';
import { collectPlaceholderSources, planPlaceholder, type PlaceholderResult } from '../placeholder.js';
import { exportInput, namespaceContentChanged, namespaceInput, secretInput } from './inputs.js';
import { namedSecretWatches, type NamedSecretWatches } from './named-secrets.js';

/**
 * Fills placeholder Secrets (annotation secretgen.carvel.dev/image-pull-secret)
 * with the merged credentials of every export reaching their namespace.
 *
 * Events fan out only to the placeholders they can affect: a namespace change
 * to that namespace's placeholders, an export or source change to the
 * placeholders in namespaces the export reaches (before or after). Writes go
 * out from the queue's workers concurrently, and an unchanged result is not
 * written.
 */
export class PlaceholderController extends ControllerOperator {
  private placeholders!: Informer<V1Secret>;
  private wrongType!: Informer<V1Secret>;
  private namespaces!: Informer<V1Namespace>;
  private exports!: Informer<SecretExport>;
  private secrets!: NamedSecretWatches;

  constructor(ctx: OperatorContext) {
    super(ctx, 'placeholder');
  }

  protected async init(): Promise<void> {
    this.secrets = namedSecretWatches(this.ctx);
    this.placeholders = this.watch(placeholdersInformer(this.ctx));
    this.wrongType = this.watch(wrongTypePlaceholdersInformer(this.ctx));
    this.namespaces = namespacesInformer(this.ctx);
    this.namespaces.addHandlers({
      onAdd: (ns) => this.enqueueNamespace(ns.metadata!.name!),
      onDelete: (ns) => this.enqueueNamespace(ns.metadata!.name!),
      onUpdate: (before, after) => {
        if (namespaceContentChanged(before, after)) this.enqueueNamespace(after.metadata!.name!);
      },
    });
    this.exports = secretExportsInformer(this.ctx);
    this.exports.addHandlers({
      onAdd: (e) => {
        this.secrets.acquire(e.metadata!.namespace!, e.metadata!.name!, 'placeholder');
        this.enqueueReachedBy([e]);
      },
      onUpdate: (before, after) => this.enqueueReachedBy([before, after]),
      onDelete: (e) => {
        this.secrets.release(e.metadata!.namespace!, e.metadata!.name!, 'placeholder');
        this.enqueueReachedBy([e]);
      },
    });
    this.secrets.onChange((namespace, name) => {
      const exp = this.exports.get(namespace, name);
      if (exp) this.enqueueReachedBy([exp]);
    });
  }

  private enqueueNamespace(namespace: string): void {
    for (const s of this.placeholders.byIndex('namespace', namespace))
      this.queue.add(`${namespace}/${s.metadata!.name}`);
    for (const s of this.wrongType.byIndex('namespace', namespace))
      this.queue.add(`${namespace}/${s.metadata!.name}`);
  }

  /** Placeholders in every namespace any of these export versions reaches. */
  private enqueueReachedBy(versions: SecretExport[]): void {
    const inputs = versions.map(exportInput);
    const namespaces = new Set<string>();
    for (const ns of this.namespaces.list()) {
      const input = namespaceInput(ns);
      if (inputs.some((e) => matchExportToNamespace(e, input))) namespaces.add(ns.metadata!.name!);
    }
    for (const namespace of namespaces) {
      for (const s of this.placeholders.byIndex('namespace', namespace))
        this.queue.add(`${namespace}/${s.metadata!.name}`);
    }
  }

  protected async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    if (!namespace) return;
    const full = this.placeholders.get(namespace, name);
    const secret = full ?? this.wrongType.get(namespace, name);
    if (!secret) return;
    // A SecretImport's copy is the import's alone, even when the import's annotations mark it as a
    // placeholder: filling it would fight the import controller, which restores the source's data.
    if (isImportCopy({ ownerReferences: secret.metadata?.ownerReferences })) return;
    // The wrong-type cache is metadata only; its field selector already says the type is wrong.
    const type = full ? (full.type ?? '') : 'not kubernetes.io/dockerconfigjson';
    const ns = this.namespaces.get(undefined, namespace);
    // A namespace not in the cache yet (or being deleted) reaches nothing; its add event requeues us.
    const nsInput = ns ? namespaceInput(ns) : { name: namespace, labels: {}, annotations: {} };
    const reaching = full
      ? this.exports
          .list()
          .map(exportInput)
          .filter((e) => matchExportToNamespace(e, nsInput))
      : [];
    // Only the exports that reach us need their Secret; wait for their watches' first list.
    const sources = new Map<string, V1Secret>();
    for (const e of reaching) {
      const s = await this.secrets.get(e.namespace, e.name);
      if (s) sources.set(`${e.namespace}/${e.name}`, s);
    }
    const collected = collectPlaceholderSources(nsInput, reaching, (ref) => {
      const s = sources.get(`${ref.namespace}/${ref.name}`);
      return s ? secretInput(s) : undefined;
    });
    const plan = planPlaceholder(
      {
        namespace,
        name,
        type,
        data: secret.data,
        annotations: secret.metadata?.annotations,
      },
      collected,
    );
    if (!plan.write) return;
    const patch: Record<string, unknown> = {
      metadata: { annotations: { [STATUS_ANNOTATION]: plan.write.annotations[STATUS_ANNOTATION] } },
    };
    // Data is replaced entirely: keys the placeholder had beyond .dockerconfigjson are removed.
    if (plan.write.data) patch.data = replaceNulls(secret.data ?? {}, plan.write.data);
    try {
      await this.client.mergePatch(SecretsResource, namespace, name, patch);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    if (plan.result) this.reportConflicts(secret, plan.result);
    this.log.debug('placeholder updated', {
      placeholder: key,
      sources: plan.result?.secretNames ?? [],
      skipped: plan.result?.skipped.length ?? 0,
    });
  }

  /** Called only when the placeholder changed, so a steady conflict does not repeat its event. */
  private reportConflicts(secret: V1Secret, result: PlaceholderResult): void {
    for (const c of result.conflicts) {
      this.ctx.events.event(
        { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata },
        'Warning',
        'RegistryConflict',
        `Several exports give credentials for registry ${c.registry}: using ${c.winner}, ignoring ${c.losers.join(', ')}`,
      );
    }
    for (const s of result.skipped) {
      this.ctx.events.event(
        { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata },
        'Warning',
        'SourceSkipped',
        `Skipped ${s.source}${s.registry ? ` registry ${s.registry}` : ''}: ${s.reason}`,
      );
    }
  }
}
