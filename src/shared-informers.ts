import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import {
  SecretExportKind,
  SecretExportResource,
  SecretImportKind,
  SecretImportResource,
  type SecretExport,
  type SecretImport,
} from '../generated/index.js';
import { byNamespaceIndex, type Informer } from './runtime/informer.js';
import type { ResourceType } from './runtime/kube-client.js';
import type { OperatorContext } from './runtime/operator.js';
import { DOCKER_CONFIG_JSON_TYPE, IMAGE_PULL_SECRET_ANNOTATION } from './sharing/annotations.js';

export const NamespacesResource: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
};
export const SecretsResource: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
};
export const SecretExports: ResourceType = { ...SecretExportResource, kind: SecretExportKind };
export const SecretImports: ResourceType = { ...SecretImportResource, kind: SecretImportKind };

const isPlaceholder = (s: V1Secret) => s.metadata?.annotations?.[IMAGE_PULL_SECRET_ANNOTATION] !== undefined;

/** Every Namespace, whole (small objects; selectors read labels and annotations). */
export function namespacesInformer(ctx: OperatorContext): Informer<V1Namespace> {
  return ctx.informers.get<V1Namespace>('namespaces', {
    resource: NamespacesResource,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
}

/**
 * Placeholder Secrets of the right type, with data. The server filters on type
 * and the informer keeps only annotated ones, so the cache grows with
 * placeholders, not with the cluster's Secrets.
 */
export function placeholdersInformer(ctx: OperatorContext): Informer<V1Secret> {
  const informer = ctx.informers.get<V1Secret>('secrets:placeholders', {
    resource: SecretsResource,
    fieldSelector: `type=${DOCKER_CONFIG_JSON_TYPE}`,
    filter: isPlaceholder,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  if (!informer.hasIndex('namespace')) informer.addIndex('namespace', byNamespaceIndex);
  return informer;
}

/**
 * Annotated Secrets of any other type (misconfigured placeholders), metadata
 * only: the controller only writes a failure annotation on them.
 */
export function wrongTypePlaceholdersInformer(ctx: OperatorContext): Informer<V1Secret> {
  const informer = ctx.informers.get<V1Secret>('secrets:wrong-type-placeholders', {
    resource: SecretsResource,
    fieldSelector: `type!=${DOCKER_CONFIG_JSON_TYPE}`,
    metadataOnly: true,
    filter: isPlaceholder,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  if (!informer.hasIndex('namespace')) informer.addIndex('namespace', byNamespaceIndex);
  return informer;
}

/** What the Secret index keeps of each Secret: enough to know it exists and when it changed. */
export interface SecretStub {
  apiVersion?: string;
  kind?: string;
  metadata: { namespace: string; name: string; resourceVersion: string };
}

/**
 * Every Secret of the cluster as a slim record (namespace, name,
 * resourceVersion), from one metadata-only watch: which Secrets exist and when
 * each changed, whatever number of names the controllers reference. Labels,
 * annotations (kubectl's last-applied copy may hold the data) and
 * managedFields are dropped as each object arrives, so 10,000 Secrets cost a
 * few MB whatever their size.
 */
export function secretIndexInformer(ctx: OperatorContext): Informer<SecretStub> {
  return ctx.informers.get<SecretStub>('secrets:index', {
    resource: SecretsResource,
    metadataOnly: true,
    transform: (obj) => ({
      metadata: {
        namespace: obj.metadata?.namespace ?? '',
        name: obj.metadata?.name ?? '',
        resourceVersion: obj.metadata?.resourceVersion ?? '',
      },
    }),
    // Consumers re-read what they need on each change; a replay would only cost GETs.
    resyncPeriodMs: 0,
  });
}

export function secretExportsInformer(ctx: OperatorContext): Informer<SecretExport> {
  return ctx.informers.get<SecretExport>('secretexports', {
    resource: SecretExports,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
}

export function secretImportsInformer(ctx: OperatorContext): Informer<SecretImport> {
  return ctx.informers.get<SecretImport>('secretimports', {
    resource: SecretImports,
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
}
