import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { SecretExport } from '../../../generated/index.js';
import { isDeleting, objectKey, splitKey, type Informer } from '../../runtime/informer.js';
import { ApiError, isNotFound } from '../../runtime/kube-client.js';
import { OwnWrites } from '../../runtime/own-writes.js';
import { sameStringMap } from '../../runtime/string-map.js';
import { errorMessage } from '../../runtime/work-queue.js';
import { domainMetrics, secondsSinceSourceChange, type SourceChange } from '../../runtime/domain-metrics.js';
import { ControllerOperator, type ControllerGauge, type OperatorContext } from '../../runtime/operator.js';
import {
  OutcomeEvents,
  settledFromStatusAnnotation,
  type SettledOutcome,
} from '../../runtime/outcome-events.js';
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
import {
  collectPlaceholderSources,
  isTooLargeRejection,
  placeholderRejectedMessage,
  planFailure,
  planPlaceholder,
  type PlaceholderPlan,
  type PlaceholderResult,
} from '../placeholder.js';
import { exportInput, namespaceContentChanged, namespaceInput, secretInput } from './inputs.js';
import { namedSecretWatches, type NamedSecretWatches } from './named-secrets.js';

/** Event reason: the merged credentials cannot be written (over the Secret size limit, or rejected). */
export const PLACEHOLDER_TOO_LARGE = 'PlaceholderTooLarge';
/** Event reason: the placeholder is not of type kubernetes.io/dockerconfigjson, so it is not filled. */
export const PLACEHOLDER_WRONG_TYPE = 'PlaceholderWrongType';
const WRONG_TYPE_MESSAGE =
  'Expected secret to have type=corev1.SecretTypeDockerConfigJson, but did not; recreate the Secret with type kubernetes.io/dockerconfigjson';
const MAX_EVENTS_PER_KIND = 10;

function isTooLarge(err: unknown): boolean {
  return err instanceof ApiError && isTooLargeRejection(err.code, err.message);
}

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
  /** The newest source Secret change seen (for the propagation metric). */
  private lastSourceChange: SourceChange | undefined;
  private readonly outcomes: OutcomeEvents;
  /** Placeholders written here: the watch echo of a write needs no second reconcile. */
  private readonly ownWrites = new OwnWrites();

  constructor(ctx: OperatorContext) {
    super(ctx, 'placeholder');
    this.outcomes = new OutcomeEvents(ctx.events, { announceFirstSuccess: false });
  }

  protected async init(): Promise<void> {
    this.secrets = namedSecretWatches(this.ctx);
    this.placeholders = this.watch(placeholdersInformer(this.ctx), (secret, _old, event) =>
      this.ownWrites.isEchoEvent('Secret', secret, event) ? [] : [objectKey(secret)],
    );
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
      onUpdate: (before, after) => {
        // The export's own status write (after each source change, mid-fan-out) moves no placeholder:
        // placeholders read its spec (generation), annotations and deletion only.
        if (
          before.metadata?.generation === after.metadata?.generation &&
          isDeleting(before) === isDeleting(after) &&
          sameStringMap(before.metadata?.annotations, after.metadata?.annotations)
        )
          return;
        this.enqueueReachedBy([before, after]);
      },
      onDelete: (e) => {
        this.secrets.release(e.metadata!.namespace!, e.metadata!.name!, 'placeholder');
        this.enqueueReachedBy([e]);
      },
    });
    this.secrets.onChange((namespace, name) => {
      this.lastSourceChange = { key: `${namespace}/${name}`, at: performance.now() };
      const exp = this.exports.get(namespace, name);
      if (exp) this.enqueueReachedBy([exp]);
    });
  }

  override metricGauges(): ControllerGauge[] {
    return [
      {
        name: 'regcred_placeholders_managed',
        help: 'Placeholder Secrets (of type kubernetes.io/dockerconfigjson) this operator fills.',
        // Set by init(); a scrape may come before it.
        value: () => (this.placeholders as Informer<V1Secret> | undefined)?.size ?? 0,
      },
    ];
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
    if (!secret) {
      this.outcomes.forget(key);
      return;
    }
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
    const current = { namespace, name, type, data: secret.data, annotations: secret.metadata?.annotations };
    const plan = planPlaceholder(current, collected);
    if (!plan.write) return;
    const previous = settledFromStatusAnnotation(secret.metadata?.annotations?.[STATUS_ANNOTATION]);
    try {
      await this.writePlaceholder(secret, full !== undefined, plan.write);
    } catch (err) {
      if (isNotFound(err)) return;
      if (!isTooLarge(err) || !plan.write.data) throw err;
      // Permanent until the inputs change (their events requeue us): report it instead of retrying.
      const bytes = Buffer.byteLength(plan.result?.dockerconfigjson ?? '', 'utf8');
      const rejected = placeholderRejectedMessage(namespace, bytes, errorMessage(err));
      const failure = planFailure(current, plan.result, rejected);
      if (failure.write)
        await this.writeFailure(key, secret, full !== undefined, previous, failure.write, rejected);
      return;
    }
    if (plan.failure) {
      this.reportFailure(key, secret, previous, plan.failure);
      return;
    }
    const about = { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata };
    if (!plan.result) {
      this.outcomes.report(
        key,
        about,
        previous,
        { failed: true, message: WRONG_TYPE_MESSAGE },
        PLACEHOLDER_WRONG_TYPE,
      );
    } else {
      this.outcomes.report(key, about, previous, { failed: false });
    }
    domainMetrics.placeholderUpdated(
      secondsSinceSourceChange(this.lastSourceChange, plan.result?.secretNames ?? [], performance.now()),
    );
    if (plan.result) {
      domainMetrics.registryConflicts(plan.result.conflicts.length);
      this.reportConflicts(secret, plan.result);
    }
    this.log.debug('placeholder updated', {
      placeholder: key,
      sources: plan.result?.secretNames ?? [],
      skipped: plan.result?.skipped.length ?? 0,
    });
  }

  /** `whole`: the Secret is the placeholder cache's whole object, not the wrong-type cache's metadata. */
  private async writePlaceholder(
    secret: V1Secret,
    whole: boolean,
    write: NonNullable<PlaceholderPlan['write']>,
  ): Promise<void> {
    const md = secret.metadata!;
    await this.ownWrites.write(
      'Secret',
      md.namespace,
      md.name!,
      () =>
        whole
          ? // An update of the cached version, as upstream writes it: the API server does less for it than
            // for a patch (no merge), and a Secret changed since it was read is refused (409) and read again.
            // managedFields are not cached; left out, the API server keeps them.
            this.client.replace<V1Secret>(SecretsResource, {
              ...secret,
              metadata: { ...md, annotations: write.annotations },
              // Data is replaced entirely: keys the placeholder had beyond .dockerconfigjson are removed.
              data: write.data ?? secret.data,
            })
          : // The wrong-type cache holds metadata only (and is never filled): only the status is patched.
            this.client.mergePatch<V1Secret>(SecretsResource, md.namespace, md.name!, {
              metadata: { annotations: { [STATUS_ANNOTATION]: write.annotations[STATUS_ANNOTATION] } },
            }),
      () => this.queue.add(objectKey(secret)),
    );
  }

  private async writeFailure(
    key: string,
    secret: V1Secret,
    whole: boolean,
    previous: SettledOutcome | undefined,
    write: NonNullable<PlaceholderPlan['write']>,
    failure: string,
  ): Promise<void> {
    try {
      await this.writePlaceholder(secret, whole, write);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    this.reportFailure(key, secret, previous, failure);
  }

  /** Called only when the status annotation changed to this failure, so it is reported once. */
  private reportFailure(
    key: string,
    secret: V1Secret,
    previous: SettledOutcome | undefined,
    failure: string,
  ): void {
    this.log.warn('placeholder not written', {
      placeholder: `${secret.metadata?.namespace}/${secret.metadata?.name}`,
      reason: failure,
    });
    this.outcomes.report(
      key,
      { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata },
      previous,
      { failed: true, message: failure },
      PLACEHOLDER_TOO_LARGE,
    );
  }

  /**
   * Called only when the placeholder changed, so a steady conflict does not
   * repeat its event. At most MAX_EVENTS_PER_KIND of each kind: a source with
   * thousands of bad entries must not become thousands of writes.
   */
  private reportConflicts(secret: V1Secret, result: PlaceholderResult): void {
    const about = { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata };
    const report = <T>(items: readonly T[], reason: string, text: (item: T) => string) => {
      for (const item of items.slice(0, MAX_EVENTS_PER_KIND))
        this.ctx.events.event(about, 'Warning', reason, text(item));
      const rest = items.length - MAX_EVENTS_PER_KIND;
      if (rest > 0) {
        this.ctx.events.event(
          about,
          'Warning',
          reason,
          `${rest} more like these are not reported as events; see the ${STATUS_ANNOTATION} annotation`,
        );
      }
    };
    report(
      result.conflicts,
      'RegistryConflict',
      (c) =>
        `Several exports give credentials for registry ${c.registry}: using ${c.winner}, ignoring ${c.losers.join(', ')}`,
    );
    report(
      result.skipped,
      'SourceSkipped',
      (s) => `Skipped ${s.source}${s.registry ? ` registry ${s.registry}` : ''}: ${s.reason}`,
    );
  }
}
