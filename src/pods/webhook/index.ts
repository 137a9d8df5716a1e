// Wiring of the Pod admission webhook: the caches it reads, the server every
// replica runs, and the controller (leader only) that keeps its certificates
// and its MutatingWebhookConfiguration.

import type { KubernetesObject, V1Namespace, V1Secret } from '@kubernetes/client-node';
import { isIP } from 'node:net';
import { ImagePullSecretPolicyKind, ImagePullSecretPolicyResource } from '../../../generated/index.js';
import type { OperatorConfig } from '../../config.js';
import type { RequiredCrd } from '../../required-crds.js';
import { crdName } from '../../required-crds.js';
import type { Informer } from '../../runtime/informer.js';
import { isNotFound, type ResourceType } from '../../runtime/kube-client.js';
import type { OperatorContext } from '../../runtime/operator.js';
import {
  namespacesInformer,
  NamespacesResource,
  SecretsResource,
  serviceAccountsInformer,
  ServiceAccountsResource,
} from '../../shared-informers.js';
import type { PolicyView } from '../admission.js';
import type { NamespaceView } from '../policy-selection.js';
import { readTlsSecret, servingNames, WEBHOOK_TLS_SECRET } from './certs.js';
import {
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  type MutatingWebhookConfiguration,
} from './configuration.js';
import { MutatingWebhookConfigurations, WebhookSetupController } from './controller.js';
import { WebhookServer } from './server.js';

export const ImagePullSecretPolicies: ResourceType = {
  ...ImagePullSecretPolicyResource,
  kind: ImagePullSecretPolicyKind,
};

/** The CRD the webhook reads policies from; start fails with this message when it is missing. */
export function webhookRequiredCrd(): RequiredCrd {
  return {
    resource: ImagePullSecretPolicyResource,
    name: crdName(ImagePullSecretPolicyResource),
    controllers: [],
    neededBy: { what: 'the Pod webhook', disable: 'start with --webhook-port=0' },
  };
}

/** `crds` plus the webhook's, unless a controller already needs it. */
export function withWebhookCrd(crds: RequiredCrd[]): RequiredCrd[] {
  const own = webhookRequiredCrd();
  return crds.some((c) => c.name === own.name) ? crds : [...crds, own];
}

export interface PodWebhook {
  server: WebhookServer;
  controller: WebhookSetupController;
  /** Listens; fails when the port is taken. */
  listen(): Promise<void>;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Where the server listens: loopback only when the API server calls a loopback URL (the operator runs beside it). */
export function webhookListenHost(url: string | undefined): string {
  if (!url) return '0.0.0.0';
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  if (!LOOPBACK.has(host)) return isIP(host) === 6 ? '::' : '0.0.0.0';
  return host === 'localhost' ? '127.0.0.1' : host;
}

/** Registers the webhook's informers on the shared factory (before the manager starts them). */
export function buildPodWebhook(ctx: OperatorContext, config: OperatorConfig): PodWebhook {
  const operatorNamespace = config.namespace;
  const tlsSecret = ctx.informers.get<V1Secret>('webhook:tls-secret', {
    resource: SecretsResource,
    namespace: operatorNamespace,
    fieldSelector: `metadata.name=${WEBHOOK_TLS_SECRET}`,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  const configuration = ctx.informers.get<MutatingWebhookConfiguration>('webhook:configuration', {
    resource: MutatingWebhookConfigurations,
    fieldSelector: `metadata.name=${WEBHOOK_CONFIGURATION_NAME}`,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  const policies = ctx.informers.get<PolicyView & KubernetesObject>('imagepullsecretpolicies', {
    resource: ImagePullSecretPolicies,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  const namespaces: Informer<V1Namespace> = namespacesInformer(ctx);
  // The policy controller's slim ServiceAccount cache: one watch for both.
  const serviceAccounts = serviceAccountsInformer(ctx);
  const client = ctx.client;
  const logger = ctx.logger.child({ component: 'pod-webhook' });
  const namespaceView = (ns: V1Namespace | undefined): NamespaceView | undefined =>
    ns?.metadata?.name ? { name: ns.metadata.name, labels: ns.metadata.labels ?? {} } : undefined;
  const server = new WebhookServer({
    port: config.webhookPort,
    host: webhookListenHost(config.webhookUrl),
    path: config.webhookUrl ? new URL(config.webhookUrl).pathname : WEBHOOK_PATH,
    logger,
    source: {
      operatorNamespace,
      synced: () => policies.hasSynced() && namespaces.hasSynced() && serviceAccounts.hasSynced(),
      policies: () => policies.list(),
      namespace: (name) => namespaceView(namespaces.get(undefined, name)),
      serviceAccountLabels: (namespace, name) => {
        const sa = serviceAccounts.get(namespace, name);
        return sa ? (sa.metadata?.labels ?? {}) : undefined;
      },
      readNamespace: async (name, signal) => {
        const ns = await client
          .request<V1Namespace>('GET', client.path(NamespacesResource, undefined, name), {
            signal,
          })
          .catch((err: unknown) => {
            if (isNotFound(err)) return undefined;
            throw err;
          });
        return namespaceView(ns);
      },
      readServiceAccountLabels: async (namespace, name, signal) => {
        const sa = await client
          .request<KubernetesObject>('GET', client.path(ServiceAccountsResource, namespace, name), { signal })
          .catch((err: unknown) => {
            if (isNotFound(err)) return undefined;
            throw err;
          });
        return sa ? (sa.metadata?.labels ?? {}) : undefined;
      },
    },
  });
  // Every replica serves whatever the Secret holds, from the moment it is seen.
  const load = (secret: V1Secret) => {
    const tls = readTlsSecret(secret.data);
    if (tls) server.useCertificate(tls.cert, tls.key);
  };
  tlsSecret.addHandlers({ onAdd: load, onUpdate: (_old, secret) => load(secret), onDelete: () => undefined });
  const controller = new WebhookSetupController(
    ctx,
    { tlsSecret, configuration, policies },
    {
      operatorNamespace,
      url: config.webhookUrl,
      tls: {
        caValidityMs: config.webhookCaValidityMs,
        certValidityMs: config.webhookCertValidityMs,
        ...servingNames(operatorNamespace, config.webhookUrl),
      },
    },
  );
  return {
    server,
    controller,
    async listen() {
      const address = await server.listen();
      logger.info('Pod webhook listening', {
        address: `${address.address}:${address.port}`,
        url: config.webhookUrl ?? `service ${operatorNamespace}/regcred-operator-webhook${WEBHOOK_PATH}`,
      });
    },
    close: () => server.close(),
  };
}
