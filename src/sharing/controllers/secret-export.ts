import type { V1Namespace } from '@kubernetes/client-node';
import type { SecretExport, SecretExportStatus } from '../../../generated/index.js';
import { parseDockerConfigJson } from '../../registry/dockerconfig.js';
import { commonStatus, type ConditionType } from '../../runtime/conditions.js';
import { splitKey, type Informer } from '../../runtime/informer.js';
import { ControllerOperator, type ControllerGauge, type OperatorContext } from '../../runtime/operator.js';
import { OutcomeEvents, settledFromStatus } from '../../runtime/outcome-events.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import { namespacesInformer, SecretExports, secretExportsInformer } from '../../shared-informers.js';
import { DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE } from '../annotations.js';
import { validateExportSpec, validationErrorText } from '../export-rules.js';
import { matchExportToNamespace } from '../namespace-match.js';
import { decodeSecretValue } from '../secret-data.js';
import { exportInput, namespaceContentChanged, namespaceInput } from './inputs.js';
import { namedSecretWatches, type NamedSecretWatches } from './named-secrets.js';

export const MISSING_EXPORTED_SECRET = 'Missing exported secret';

/** Namespace churn only moves the reached-namespace count: batch it. */
const NAMESPACE_COUNT_DELAY_MS = 1000;

/**
 * Reports on each SecretExport: whether its Secret exists (and, for registry
 * credentials, parses), spec validation, and how many namespaces it reaches.
 * It also keeps a watch on every exported Secret, which the placeholder and
 * import controllers read.
 */
export class SecretExportController extends ControllerOperator {
  private exports!: Informer<SecretExport>;
  private namespaces!: Informer<V1Namespace>;
  private secrets!: NamedSecretWatches;
  private readonly outcomes: OutcomeEvents;

  constructor(ctx: OperatorContext) {
    super(ctx, 'secretexport');
    this.outcomes = new OutcomeEvents(ctx.events);
  }

  override metricGauges(): ControllerGauge[] {
    return [
      {
        name: 'regcred_secret_exports',
        help: 'SecretExports in the cache.',
        // Set by init(); a scrape may come before it.
        value: () => (this.exports as Informer<SecretExport> | undefined)?.size ?? 0,
      },
    ];
  }

  protected async init(): Promise<void> {
    this.secrets = namedSecretWatches(this.ctx);
    this.exports = this.watch(secretExportsInformer(this.ctx));
    this.exports.addHandlers({
      onAdd: (e) => this.secrets.acquire(e.metadata!.namespace!, e.metadata!.name!, 'secretexport'),
      onDelete: (e) => this.secrets.release(e.metadata!.namespace!, e.metadata!.name!, 'secretexport'),
    });
    this.secrets.onChange((namespace, name) => {
      if (this.exports.get(namespace, name)) this.queue.add(`${namespace}/${name}`);
    });
    this.namespaces = namespacesInformer(this.ctx);
    const recount = () => {
      for (const key of this.exports.keys()) this.queue.addAfter(key, NAMESPACE_COUNT_DELAY_MS);
    };
    this.namespaces.addHandlers({
      onAdd: recount,
      onDelete: recount,
      onUpdate: (before, after) => {
        if (namespaceContentChanged(before, after)) recount();
      },
    });
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    const exp = this.exports.get(namespace, name);
    if (!exp || exp.metadata?.deletionTimestamp) {
      if (!exp) this.outcomes.forget(key);
      return;
    }
    const outcome = await this.evaluate(exp);
    const status: SecretExportStatus = {
      ...commonStatus(exp.status, exp.metadata?.generation, outcome),
      observedSecretResourceVersion: outcome.secretResourceVersion,
      reachedNamespaceCount: outcome.reached,
    };
    if (status.observedSecretResourceVersion === undefined) delete status.observedSecretResourceVersion;
    await this.writeStatus(SecretExports, exp, status);
    this.outcomes.report(key, exp, settledFromStatus(exp.status), {
      failed: outcome.type === 'ReconcileFailed',
      message: outcome.message,
    });
  }

  private async evaluate(exp: SecretExport): Promise<{
    type: ConditionType;
    reason: string;
    message: string;
    secretResourceVersion?: string;
    reached: number;
  }> {
    const input = exportInput(exp);
    const invalid = validationErrorText(validateExportSpec(input.spec));
    if (invalid) return { type: 'ReconcileFailed', reason: 'InvalidSpec', message: invalid, reached: 0 };
    const reached = this.namespaces
      .list()
      .filter((ns) => matchExportToNamespace(input, namespaceInput(ns))).length;
    const secret = await this.secrets.get(input.namespace, input.name);
    if (!secret)
      return { type: 'ReconcileFailed', reason: 'SecretMissing', message: MISSING_EXPORTED_SECRET, reached };
    const secretResourceVersion = secret.metadata?.resourceVersion;
    if (secret.type === DOCKER_CONFIG_JSON_TYPE) {
      // Beyond upstream: an unusable credential is reported here instead of silently breaking placeholders.
      const encoded = secret.data?.[DOCKER_CONFIG_JSON_KEY];
      const parsed = encoded === undefined ? undefined : parseDockerConfigJson(decodeSecretValue(encoded));
      const problem =
        encoded === undefined
          ? `Secret has no ${DOCKER_CONFIG_JSON_KEY} key`
          : parsed?.ok
            ? undefined
            : parsed?.error;
      if (problem) {
        return {
          type: 'ReconcileFailed',
          reason: 'InvalidSecret',
          message: `Exported secret is not valid ${DOCKER_CONFIG_JSON_TYPE}: ${problem}`,
          secretResourceVersion,
          reached,
        };
      }
    }
    return { type: 'ReconcileSucceeded', reason: 'Exported', message: '', secretResourceVersion, reached };
  }
}
