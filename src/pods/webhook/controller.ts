// Keeps the webhook's certificates (Secret regcred-operator-webhook-tls) and
// the MutatingWebhookConfiguration regcred-operator current. A controller like
// the others: its workers run on the leader only, so only the leader writes;
// every replica reads the same Secret to serve (see index.ts).

import type { V1Secret } from '@kubernetes/client-node';
import { isAlreadyExists, isNotFound, type ResourceType } from '../../runtime/kube-client.js';
import type { Informer } from '../../runtime/informer.js';
import { ControllerOperator, type OperatorContext } from '../../runtime/operator.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import { NamespacesResource, SecretsResource } from '../../shared-informers.js';
import type { PolicyView } from '../admission.js';
import {
  bundleHolds,
  planTls,
  readTlsSecret,
  tlsSecretData,
  WEBHOOK_TLS_SECRET,
  type TlsSettings,
} from './certs.js';
import {
  configurationUpdate,
  desiredConfiguration,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  WEBHOOK_CONFIGURATION_NAME,
  type MutatingWebhookConfiguration,
} from './configuration.js';

export const MutatingWebhookConfigurations: ResourceType = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'mutatingwebhookconfigurations',
  kind: 'MutatingWebhookConfiguration',
  namespaced: false,
};

/** The only key this controller reconciles: everything it keeps is one unit. */
const KEY = 'webhook';
/**
 * How long a caBundle must have been stored before a certificate from a new CA
 * is served: the API server follows the configuration through its own watch.
 */
export const CA_BUNDLE_PROPAGATION_MS = 5_000;

export interface WebhookInformers {
  tlsSecret: Informer<V1Secret>;
  configuration: Informer<MutatingWebhookConfiguration>;
  policies: Informer<PolicyView & { metadata?: { name?: string } }>;
}

export interface WebhookSetupOptions {
  operatorNamespace: string;
  url: string | undefined;
  tls: TlsSettings;
  /** Current time in ms (tests move it). */
  now?: () => number;
}

export class WebhookSetupController extends ControllerOperator {
  /** Our last Secret write, and the resourceVersion it replaced: a cache still showing that one lags it. */
  private lastWrite: { replacedVersion: string; secret: V1Secret } | undefined;
  /** The caBundle last seen in the configuration, and since when. */
  private bundleSeen: { bundle: string; since: number } | undefined;

  constructor(
    ctx: OperatorContext,
    private readonly informers: WebhookInformers,
    private readonly options: WebhookSetupOptions,
  ) {
    super(ctx, 'webhook');
  }

  protected override async init(): Promise<void> {
    this.watch(this.informers.tlsSecret, () => [KEY]);
    this.watch(this.informers.configuration, () => [KEY]);
    // Policies naming kube-system or the operator namespace change the namespaceSelector.
    this.watch(this.informers.policies, () => [KEY]);
    this.queue.add(KEY);
  }

  protected override async reconcile(): Promise<ReconcileResult> {
    const ns = this.options.operatorNamespace;
    let secret = this.informers.tlsSecret.get(ns, WEBHOOK_TLS_SECRET);
    // Planning from a cache that has not seen our own write would issue certificates again.
    const cachedVersion = secret?.metadata?.resourceVersion ?? '';
    if (this.lastWrite?.secret.metadata?.resourceVersion === cachedVersion) this.lastWrite = undefined;
    else if (this.lastWrite?.replacedVersion === cachedVersion) secret = this.lastWrite.secret;
    const configuration = this.informers.configuration.get(undefined, WEBHOOK_CONFIGURATION_NAME);
    const caBundle = Buffer.from(
      configuration?.webhooks?.[0]?.clientConfig?.caBundle ?? '',
      'base64',
    ).toString();
    const now = this.options.now?.() ?? Date.now();
    if (this.bundleSeen?.bundle !== caBundle) this.bundleSeen = { bundle: caBundle, since: now };
    const bundleSettled = now - this.bundleSeen.since >= CA_BUNDLE_PROPAGATION_MS;
    let waitingForBundle = false;
    const plan = await planTls(readTlsSecret(secret?.data), this.options.tls, ns, now, (ca) => {
      if (!bundleHolds(caBundle, ca)) return false;
      if (!bundleSettled) waitingForBundle = true;
      return bundleSettled;
    });
    if (plan.changes.length > 0) {
      const written = await this.writeSecret(secret, tlsSecretData(plan.tls));
      if (!written) return { requeueAfterMs: 500 };
      this.log.info('webhook certificates written', {
        secret: `${ns}/${WEBHOOK_TLS_SECRET}`,
        reasons: plan.changes,
      });
    }
    const desired = desiredConfiguration({
      operatorNamespace: ns,
      url: this.options.url,
      caBundlePem: plan.tls.caCerts.join(''),
      policies: this.informers.policies.list(),
    });
    if (!configuration) {
      try {
        await this.client.create(MutatingWebhookConfigurations, desired);
      } catch (err) {
        if (isAlreadyExists(err)) return { requeueAfterMs: 500 };
        throw err;
      }
      this.log.info('MutatingWebhookConfiguration created', { name: WEBHOOK_CONFIGURATION_NAME });
    } else {
      const update = configurationUpdate(configuration, desired);
      if (update) {
        // Guarded by the cached resourceVersion: a conflict re-reads and compares again.
        await this.client.replace(MutatingWebhookConfigurations, update);
        this.log.info('MutatingWebhookConfiguration updated', { name: WEBHOOK_CONFIGURATION_NAME });
      }
    }
    return {
      requeueAfterMs: waitingForBundle
        ? Math.min(plan.recheckAfterMs, CA_BUNDLE_PROPAGATION_MS)
        : plan.recheckAfterMs,
    };
  }

  /**
   * Creates the Secret; when the operator namespace does not exist (an
   * operator started outside the cluster with `npm start`), creates it first.
   */
  private async createInNamespace(secret: V1Secret): Promise<V1Secret> {
    try {
      return await this.client.create<V1Secret>(SecretsResource, secret);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const ns = this.options.operatorNamespace;
    try {
      await this.client.create(NamespacesResource, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
      });
      this.log.info('operator namespace created for the webhook certificates', { namespace: ns });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return this.client.create<V1Secret>(SecretsResource, secret);
  }

  /** Creates or replaces the Secret (guarded by the cached resourceVersion); false when it already exists. */
  private async writeSecret(current: V1Secret | undefined, data: Record<string, string>): Promise<boolean> {
    const ns = this.options.operatorNamespace;
    if (!current) {
      const secret: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: WEBHOOK_TLS_SECRET, namespace: ns, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
        type: 'kubernetes.io/tls',
        data,
      };
      try {
        this.lastWrite = { replacedVersion: '', secret: await this.createInNamespace(secret) };
      } catch (err) {
        // The cache has not seen it yet; look again once it has.
        if (isAlreadyExists(err)) return false;
        throw err;
      }
      return true;
    }
    const replaced = await this.client.replace<V1Secret>(SecretsResource, {
      ...current,
      metadata: {
        ...current.metadata,
        labels: { ...current.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
      },
      data,
    });
    this.lastWrite = { replacedVersion: current.metadata?.resourceVersion ?? '', secret: replaced };
    return true;
  }
}
