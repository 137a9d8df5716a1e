import type { V1Namespace, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import {
  ImagePullSecretPolicyKind,
  ImagePullSecretPolicyResource,
  type ImagePullSecretPolicy,
} from '../../../generated/index.js';
import { isStaleWrite, type JsonPatchOp } from '../../runtime/api-errors.js';
import { isDeleting, type Informer } from '../../runtime/informer.js';
import { ApiError, isAlreadyExists, isNotFound, type ResourceType } from '../../runtime/kube-client.js';
import { ControllerOperator, type ControllerGauge, type OperatorContext } from '../../runtime/operator.js';
import { OwnWrites } from '../../runtime/own-writes.js';
import { sameStringMap } from '../../runtime/string-map.js';
import { errorMessage, type ReconcileResult } from '../../runtime/work-queue.js';
import {
  namespacesInformer,
  POLICY_PLACEHOLDERS_INDEX,
  secretIndexWithPolicyLabels,
  SecretsResource,
  ServiceAccountsResource,
  serviceAccountsInformer,
  type SecretIndex,
  type SecretStub,
} from '../../shared-informers.js';
import {
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
  IMAGE_PULL_SECRET_ANNOTATION,
} from '../../sharing/annotations.js';
import {
  byAge,
  planNamespacePlaceholders,
  POLICY_LABEL,
  type ExistingSecret,
  type NamespacePlaceholderPlan,
} from '../placeholder-ownership.js';
import { policySelectsNamespace, policySelectsServiceAccount } from '../policy-selection.js';
import { policyStatus, SECRET_CONFLICT_REASON, type NamespaceConflict } from '../policy-status.js';
import {
  ADDED_ENTRIES_ANNOTATION,
  formatAddedRecord,
  listsSecret,
  parseAddedRecord,
  planServiceAccountEntries,
  type ServiceAccountEntriesPlan,
} from '../service-account-entries.js';

export const ImagePullSecretPolicies: ResourceType = {
  ...ImagePullSecretPolicyResource,
  kind: ImagePullSecretPolicyKind,
};

/** On each policy, so that deleting it first removes what it added. */
export const POLICY_FINALIZER = 'regcred.dev/image-pull-secret-policy';
/** Warning Event on a policy whose deletion gave up waiting for its cleanup. */
export const CLEANUP_INCOMPLETE_REASON = 'CleanupIncomplete';
/**
 * How long a deleted policy waits for its cleanup before its finalizer goes
 * anyway. Leftovers are still removed afterwards: a placeholder or recorded
 * entry of a policy that does not exist is not wanted by any policy.
 */
export const CLEANUP_DEADLINE_MS = 5 * 60_000;
const CLEANUP_RECHECK_MS = 1000;
/** Namespace and ServiceAccount churn only moves counts in the status: batch it. */
const STATUS_DELAY_MS = 1000;

const POLICY_KEY = 'policy:';
const NAMESPACE_KEY = 'namespace:';
const policyKey = (name: string) => `${POLICY_KEY}${name}`;
const namespaceKey = (name: string) => `${NAMESPACE_KEY}${name}`;

/** JSON-pointer path of the record annotation ('/' escaped as '~1'). */
const RECORD_PATH = `/metadata/annotations/${ADDED_ENTRIES_ANNOTATION.replace(/~/g, '~0').replace(/\//g, '~1')}`;
const EMPTY_DOCKER_CONFIG = Buffer.from('{}', 'utf8').toString('base64');

const stubToExisting = (s: SecretStub): ExistingSecret => ({
  name: s.metadata.name,
  resourceVersion: s.metadata.resourceVersion,
  policy: s.metadata.labels?.[POLICY_LABEL],
});

/**
 * ImagePullSecretPolicy: a placeholder Secret in every selected namespace
 * (filled by the placeholder controller) and an imagePullSecrets entry on
 * every selected ServiceAccount there.
 *
 * Two kinds of queue keys. `namespace:<ns>` brings one namespace to what
 * every policy wants there (placeholders, then ServiceAccount entries, then
 * removals), so a fan-out to thousands of namespaces runs through the
 * workers one namespace at a time and one ServiceAccount gets one patch for
 * all policies. `policy:<name>` keeps the finalizer and writes the status,
 * computed from the caches.
 */
export class ImagePullSecretPolicyController extends ControllerOperator {
  private policies!: Informer<ImagePullSecretPolicy>;
  private namespaces!: Informer<V1Namespace>;
  private secrets!: SecretIndex;
  private serviceAccounts!: Informer<V1ServiceAccount>;
  /** Per policy: the last status counts, for the gauges. */
  private readonly observed = new Map<
    string,
    { namespaces: number; serviceAccounts: number; conflicts: number }
  >();
  /** Placeholders created and ServiceAccounts patched here: their watch echoes need no second namespace pass. */
  private readonly ownWrites = new OwnWrites();

  constructor(
    ctx: OperatorContext,
    private readonly operatorNamespace: string,
  ) {
    super(ctx, 'imagepullsecretpolicy');
  }

  override metricGauges(): ControllerGauge[] {
    const series =
      (pick: (o: { namespaces: number; serviceAccounts: number; conflicts: number }) => number) => () =>
        [...this.observed].map(([policy, o]) => ({ labels: { policy }, value: pick(o) }));
    return [
      {
        name: 'regcred_policy_namespaces',
        help: 'Namespaces each ImagePullSecretPolicy selects.',
        labelNames: ['policy'],
        series: series((o) => o.namespaces),
      },
      {
        name: 'regcred_policy_service_accounts',
        help: 'ServiceAccounts listing the placeholder of each ImagePullSecretPolicy.',
        labelNames: ['policy'],
        series: series((o) => o.serviceAccounts),
      },
      {
        name: 'regcred_policy_conflicts',
        help: 'Selected namespaces where a Secret of the policy secretName exists that the policy did not create.',
        labelNames: ['policy'],
        series: series((o) => o.conflicts),
      },
    ];
  }

  protected async init(): Promise<void> {
    this.policies = this.watch(
      this.ctx.informers.get<ImagePullSecretPolicy>('imagepullsecretpolicies', {
        resource: ImagePullSecretPolicies,
        resyncPeriodMs: this.ctx.resyncPeriodMs,
      }),
      (policy, old) => {
        const name = policy.metadata!.name!;
        const keys = [policyKey(name)];
        // A status write changes neither: only a new spec, a deletion, an add or a delete moves namespaces.
        const moved =
          !old ||
          JSON.stringify(old.spec) !== JSON.stringify(policy.spec) ||
          isDeleting(old) !== isDeleting(policy);
        // Only where the old or the new spec selects: elsewhere the policy has nothing and wants nothing
        // (leftovers of a deleted policy are queued by its finalizer; startup queues every namespace).
        if (moved) {
          for (const ns of this.namespaces.list()) {
            const view = { name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} };
            const selects = (p: ImagePullSecretPolicy) =>
              policySelectsNamespace(p, view, this.operatorNamespace);
            if (selects(policy) || (old !== undefined && selects(old))) keys.push(namespaceKey(view.name));
          }
        }
        return keys;
      },
    );
    this.policies.addHandlers({ onDelete: (p) => this.observed.delete(p.metadata!.name!) });

    this.namespaces = this.watch(namespacesInformer(this.ctx), (ns, old) => {
      if (
        old &&
        sameStringMap(old.metadata?.labels, ns.metadata?.labels) &&
        isDeleting(old) === isDeleting(ns)
      )
        return [];
      this.recountAll();
      return [namespaceKey(ns.metadata!.name!)];
    });

    this.serviceAccounts = this.watch(serviceAccountsInformer(this.ctx), (sa, _old, event) => {
      if (this.policies.size === 0 && sa.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION] === undefined)
        return [];
      this.recountAll();
      if (this.ownWrites.isEchoEvent('ServiceAccount', sa, event)) return [];
      return [namespaceKey(sa.metadata!.namespace!)];
    });

    this.secrets = this.watch(secretIndexWithPolicyLabels(this.ctx), (stub, old, event) => {
      const md = stub.metadata;
      // Plans read only a Secret's existence, name and labels: a data change (a placeholder being filled) moves nothing.
      if (old && sameStringMap(old.metadata.labels, md.labels)) return [];
      const labelled = md.labels?.[POLICY_LABEL] ?? old?.metadata.labels?.[POLICY_LABEL];
      const named = this.policies.list().filter((p) => p.spec.secretName === md.name);
      if (labelled === undefined && named.length === 0) return [];
      for (const p of named) this.queue.addAfter(policyKey(p.metadata!.name!), STATUS_DELAY_MS);
      if (labelled !== undefined) this.queue.addAfter(policyKey(labelled), STATUS_DELAY_MS);
      if (this.ownWrites.isEchoEvent('Secret', stub, event)) return [];
      return [namespaceKey(md.namespace)];
    });
  }

  private recountAll(): void {
    for (const name of this.policies.keys()) this.queue.addAfter(policyKey(name), STATUS_DELAY_MS);
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    if (key.startsWith(NAMESPACE_KEY)) return this.reconcileNamespace(key.slice(NAMESPACE_KEY.length));
    if (key.startsWith(POLICY_KEY)) return this.reconcilePolicy(key.slice(POLICY_KEY.length));
  }

  // ---- One namespace, every policy ----

  /** The policies selecting a namespace (oldest first) and what they need there. */
  private planNamespace(ns: V1Namespace): {
    selecting: ImagePullSecretPolicy[];
    plan: NamespacePlaceholderPlan;
  } {
    const name = ns.metadata!.name!;
    const view = { name, labels: ns.metadata?.labels ?? {} };
    const selecting = this.policies
      .list()
      .filter((p) => !isDeleting(p) && policySelectsNamespace(p, view, this.operatorNamespace))
      .map((p) => ({
        policy: p,
        name: p.metadata!.name!,
        createdAt: String(p.metadata?.creationTimestamp ?? ''),
      }))
      .sort(byAge)
      .map((p) => p.policy);
    const plan = planNamespacePlaceholders(
      selecting.map((p) => ({ name: p.metadata!.name!, secretName: p.spec.secretName })),
      (secretName) => {
        const stub = this.secrets.get(name, secretName);
        return stub && stubToExisting(stub);
      },
      this.secrets.byIndex(POLICY_PLACEHOLDERS_INDEX, name).map(stubToExisting),
    );
    return { selecting, plan };
  }

  private async reconcileNamespace(namespace: string): Promise<void> {
    const ns = this.namespaces.get(undefined, namespace);
    // A namespace being deleted takes its Secrets and ServiceAccounts with it.
    if (!ns || isDeleting(ns)) return;
    try {
      await this.applyNamespace(ns);
    } catch (err) {
      // A write refused because the cache lags the object (our own write of a moment ago, as a
      // rule): that object's watch event is on its way and queues this namespace again. Retrying
      // now would only meet the same cache, through the shared retry bucket.
      if (!isStaleWrite(err) && !isAlreadyExists(err)) throw err;
      this.log.debug('namespace cache behind the API server; waiting for its watch event', {
        namespace,
        error: errorMessage(err),
      });
    }
  }

  private async applyNamespace(ns: V1Namespace): Promise<void> {
    const namespace = ns.metadata!.name!;
    const { selecting, plan } = this.planNamespace(ns);
    // Placeholders first, so an entry never names a Secret that is not there.
    for (const [secretName, policy] of plan.create)
      await this.createPlaceholder(namespace, secretName, policy);
    const byName = new Map(selecting.map((p) => [p.metadata!.name!, p]));
    for (const sa of this.serviceAccounts.byIndex('namespace', namespace)) {
      if (isDeleting(sa)) continue;
      const desired = new Map<string, string>();
      for (const [policy, secretName] of plan.owned) {
        if (policySelectsServiceAccount(byName.get(policy)!, sa.metadata?.labels ?? {}))
          desired.set(policy, secretName);
      }
      const record = parseAddedRecord(sa.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION]);
      const entries = planServiceAccountEntries({ imagePullSecrets: sa.imagePullSecrets, record }, desired);
      if (entries.listChanged || entries.recordChanged) await this.patchServiceAccount(sa, entries);
    }
    for (const leftover of plan.remove) {
      const deleted = await this.client.delete(SecretsResource, namespace, leftover.name, {
        resourceVersion: leftover.resourceVersion,
      });
      if (!deleted) continue;
      this.log.info('removed placeholder no policy wants here', {
        namespace,
        secret: leftover.name,
        policy: leftover.policy,
      });
    }
  }

  private async createPlaceholder(namespace: string, name: string, policy: string): Promise<void> {
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        labels: { [POLICY_LABEL]: policy },
        annotations: { [IMAGE_PULL_SECRET_ANNOTATION]: '' },
      },
      type: DOCKER_CONFIG_JSON_TYPE,
      data: { [DOCKER_CONFIG_JSON_KEY]: EMPTY_DOCKER_CONFIG },
    };
    try {
      await this.ownWrites.write(
        'Secret',
        namespace,
        name,
        () => this.client.create(SecretsResource, secret, namespace),
        () => this.queue.add(namespaceKey(namespace)),
      );
    } catch (err) {
      // A namespace being deleted refuses new objects; its own delete event follows.
      if (err instanceof ApiError && err.code === 403 && /being terminated/.test(err.message)) return;
      throw err;
    }
    this.log.info('created placeholder', { namespace, secret: name, policy });
  }

  /**
   * One JSON patch per ServiceAccount, guarded by `test` ops on exactly what
   * the plan was computed from (the list, the record, or the resourceVersion
   * when a parent is missing), so a concurrent edit is never overwritten: the
   * patch fails and the namespace is reconciled again from the newer cache.
   */
  private async patchServiceAccount(sa: V1ServiceAccount, plan: ServiceAccountEntriesPlan): Promise<void> {
    const md = sa.metadata!;
    const ops: JsonPatchOp[] = [];
    const cachedList = sa.imagePullSecrets;
    const cachedRecord = md.annotations?.[ADDED_ENTRIES_ANNOTATION];
    const needsRecordParent = plan.recordChanged && md.annotations === undefined;
    if (cachedList === undefined || needsRecordParent)
      ops.push({ op: 'test', path: '/metadata/resourceVersion', value: md.resourceVersion });
    if (cachedList !== undefined) ops.push({ op: 'test', path: '/imagePullSecrets', value: cachedList });
    if (plan.listChanged) {
      if (plan.imagePullSecrets.length === 0) ops.push({ op: 'remove', path: '/imagePullSecrets' });
      else ops.push({ op: 'add', path: '/imagePullSecrets', value: plan.imagePullSecrets });
    }
    if (plan.recordChanged) {
      const next = formatAddedRecord(plan.record);
      if (cachedRecord !== undefined) ops.push({ op: 'test', path: RECORD_PATH, value: cachedRecord });
      if (next === undefined) ops.push({ op: 'remove', path: RECORD_PATH });
      else if (needsRecordParent)
        ops.push({ op: 'add', path: '/metadata/annotations', value: { [ADDED_ENTRIES_ANNOTATION]: next } });
      else ops.push({ op: 'add', path: RECORD_PATH, value: next });
    }
    try {
      await this.ownWrites.write(
        'ServiceAccount',
        md.namespace,
        md.name!,
        () => this.guardedPatch<V1ServiceAccount>(ServiceAccountsResource, md.namespace, md.name!, ops),
        () => this.queue.add(namespaceKey(md.namespace!)),
      );
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    this.log.debug('updated ServiceAccount imagePullSecrets', {
      serviceAccount: `${md.namespace}/${md.name}`,
      added: Object.values(plan.record),
    });
  }

  // ---- One policy: finalizer and status ----

  private async reconcilePolicy(name: string): Promise<ReconcileResult | void> {
    const policy = this.policies.get(undefined, name);
    if (!policy) return;
    if (isDeleting(policy)) return this.finishDeletion(policy);
    await this.addFinalizer(ImagePullSecretPolicies, policy, POLICY_FINALIZER);

    const secretName = policy.spec.secretName;
    let namespaces = 0;
    let serviceAccounts = 0;
    const conflicts: NamespaceConflict[] = [];
    for (const ns of this.namespaces.list()) {
      const nsName = ns.metadata!.name!;
      if (isDeleting(ns)) continue;
      if (
        !policySelectsNamespace(
          policy,
          { name: nsName, labels: ns.metadata?.labels ?? {} },
          this.operatorNamespace,
        )
      )
        continue;
      namespaces += 1;
      const { plan } = this.planNamespace(ns);
      const conflict = plan.conflicts.find((c) => c.policy === name);
      if (conflict) {
        conflicts.push({ namespace: nsName, owner: conflict.owner });
        continue;
      }
      for (const sa of this.serviceAccounts.byIndex('namespace', nsName)) {
        if (
          !isDeleting(sa) &&
          listsSecret(sa.imagePullSecrets, secretName) &&
          policySelectsServiceAccount(policy, sa.metadata?.labels ?? {})
        )
          serviceAccounts += 1;
      }
    }
    this.observed.set(name, { namespaces, serviceAccounts, conflicts: conflicts.length });
    const status = policyStatus(policy.status, policy.metadata?.generation, {
      secretName,
      namespaces,
      serviceAccounts,
      conflicts,
    });
    const written = await this.writeStatus(ImagePullSecretPolicies, policy, status);
    const message = status.usefulErrorMessage;
    if (written && message !== undefined && policy.status?.usefulErrorMessage !== message) {
      this.ctx.events.event(policy, 'Warning', SECRET_CONFLICT_REASON, message);
    }
  }

  /** Namespaces (not being deleted) where the policy still has a labelled placeholder or a recorded entry. */
  private leftovers(policy: string): string[] {
    const found = new Set<string>();
    for (const ns of this.namespaces.list()) {
      if (isDeleting(ns)) continue;
      const name = ns.metadata!.name!;
      if (
        this.secrets
          .byIndex(POLICY_PLACEHOLDERS_INDEX, name)
          .some((s) => s.metadata.labels?.[POLICY_LABEL] === policy)
      )
        found.add(name);
    }
    for (const sa of this.serviceAccounts.list()) {
      const ns = sa.metadata?.namespace ?? '';
      if (found.has(ns) || isDeleting(sa)) continue;
      const nsObj = this.namespaces.get(undefined, ns);
      if (!nsObj || isDeleting(nsObj)) continue;
      if (parseAddedRecord(sa.metadata?.annotations?.[ADDED_ENTRIES_ANNOTATION])[policy] !== undefined)
        found.add(ns);
    }
    return [...found].sort();
  }

  /**
   * A deleted policy keeps its finalizer until nothing it added is left (the
   * namespace reconciles remove it: a deleting policy wants nothing). Namespaces
   * being deleted do not count, and after CLEANUP_DEADLINE_MS the finalizer
   * goes anyway, so a deletion never hangs.
   */
  private async finishDeletion(policy: ImagePullSecretPolicy): Promise<ReconcileResult | void> {
    const name = policy.metadata!.name!;
    if (!policy.metadata?.finalizers?.includes(POLICY_FINALIZER)) return;
    const left = this.leftovers(name);
    if (left.length > 0) {
      const since = Date.parse(String(policy.metadata.deletionTimestamp));
      if (!(Date.now() - since > CLEANUP_DEADLINE_MS)) {
        for (const ns of left) this.queue.add(namespaceKey(ns));
        return { requeueAfterMs: CLEANUP_RECHECK_MS };
      }
      const named = left.slice(0, 10).join(', ') + (left.length > 10 ? ` and ${left.length - 10} more` : '');
      this.ctx.events.event(
        policy,
        'Warning',
        CLEANUP_INCOMPLETE_REASON,
        `Cleanup did not finish within ${CLEANUP_DEADLINE_MS / 60_000} minutes; removing the finalizer anyway. ` +
          `Placeholders or ServiceAccount entries remain in: ${named}; they are removed once the namespaces can be written`,
      );
    }
    await this.removeFinalizer(ImagePullSecretPolicies, policy, POLICY_FINALIZER);
    this.observed.delete(name);
    this.log.info('policy deleted; its placeholders and ServiceAccount entries are removed', {
      policy: name,
    });
  }
}
