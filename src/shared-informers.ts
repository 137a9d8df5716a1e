import type { V1Namespace, V1Secret, V1ServiceAccount } from '@kubernetes/client-node';
import {
  SecretExportKind,
  SecretExportResource,
  SecretImportKind,
  SecretImportResource,
  type SecretExport,
  type SecretImport,
} from '../generated/index.js';
import { POLICY_LABEL } from './pods/placeholder-ownership.js';
import { ADDED_ENTRIES_ANNOTATION } from './pods/service-account-entries.js';
import { byNamespaceIndex, ViewUnion, type Informer, type InformerView } from './runtime/informer.js';
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
export const ServiceAccountsResource: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'serviceaccounts',
  kind: 'ServiceAccount',
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
 * placeholders, not with the cluster's Secrets. Its watch also feeds the
 * Secret index's dockerconfigjson part.
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
 * only: the controller only writes a failure annotation on them. Its watch
 * also feeds the Secret index's part for every type but dockerconfigjson.
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
  metadata: {
    namespace: string;
    name: string;
    resourceVersion: string;
    /** Only the ImagePullSecretPolicy label, and only when the Secret has it. */
    labels?: { [POLICY_LABEL]: string };
  };
}

/** Index of the Secret index: namespace → Secrets carrying the ImagePullSecretPolicy label. */
export const POLICY_PLACEHOLDERS_INDEX = 'policy-placeholders';

/** Every Secret of the cluster as a slim record; see secretIndex. */
export type SecretIndex = ViewUnion<SecretStub>;

/** A new object, so the informer feeding the view keeps its own copy untouched. */
function toStub(obj: V1Secret): SecretStub {
  const stub: SecretStub = {
    metadata: {
      namespace: obj.metadata?.namespace ?? '',
      name: obj.metadata?.name ?? '',
      resourceVersion: obj.metadata?.resourceVersion ?? '',
    },
  };
  // Which policy created a placeholder: the policy controller decides ownership from this alone.
  const policy = obj.metadata?.labels?.[POLICY_LABEL];
  if (policy !== undefined) stub.metadata.labels = { [POLICY_LABEL]: policy };
  return stub;
}

const secretIndexes = new WeakMap<OperatorContext['informers'], SecretIndex>();

/**
 * Every Secret of the cluster as a slim record (namespace, name,
 * resourceVersion): which Secrets exist and when each changed, whatever number
 * of names the controllers reference. Labels, annotations (kubectl's
 * last-applied copy may hold the data) and managedFields are not kept, so
 * 10,000 Secrets cost a few MB whatever their size.
 *
 * No watch of its own: it is a view of the two placeholder watches, which
 * between them see every Secret (type dockerconfigjson, whole; every other
 * type, metadata only). A placeholder write, the bulk of a fan-out, then
 * reaches the operator once and not twice. One per process; created before
 * the informers start.
 */
export function secretIndex(ctx: OperatorContext): SecretIndex {
  let index = secretIndexes.get(ctx.informers);
  if (!index) {
    const parts: Array<InformerView<V1Secret, SecretStub>> = [
      placeholdersInformer(ctx).view({ transform: toStub }),
      wrongTypePlaceholdersInformer(ctx).view({ transform: toStub }),
    ];
    index = new ViewUnion<SecretStub>(parts);
    secretIndexes.set(ctx.informers, index);
  }
  return index;
}

/** The Secret index with its namespace → policy-labelled Secrets index. */
export function secretIndexWithPolicyLabels(ctx: OperatorContext): SecretIndex {
  const index = secretIndex(ctx);
  if (!index.hasIndex(POLICY_PLACEHOLDERS_INDEX)) {
    index.addIndex(POLICY_PLACEHOLDERS_INDEX, (s) =>
      s.metadata.labels?.[POLICY_LABEL] === undefined ? [] : [s.metadata.namespace],
    );
  }
  return index;
}

/**
 * Every ServiceAccount, slimmed to what the ImagePullSecretPolicy controller
 * reads: name, labels, its own record annotation and imagePullSecrets. Other
 * annotations (kubectl's last-applied copy), managedFields and the legacy
 * token `secrets` list are dropped as each object arrives, so 10,000
 * ServiceAccounts cost a few MB.
 */
export function serviceAccountsInformer(ctx: OperatorContext): Informer<V1ServiceAccount> {
  const informer = ctx.informers.get<V1ServiceAccount>('serviceaccounts', {
    resource: ServiceAccountsResource,
    transform: (sa) => {
      const md = sa.metadata ?? {};
      const added = md.annotations?.[ADDED_ENTRIES_ANNOTATION];
      const slim: V1ServiceAccount = {
        metadata: {
          namespace: md.namespace,
          name: md.name,
          uid: md.uid,
          resourceVersion: md.resourceVersion,
          labels: md.labels,
          deletionTimestamp: md.deletionTimestamp,
          // {} when the ServiceAccount has annotations but no record: a JSON patch then adds one key
          // instead of the whole map.
          annotations: md.annotations && (added === undefined ? {} : { [ADDED_ENTRIES_ANNOTATION]: added }),
        },
        imagePullSecrets: sa.imagePullSecrets?.map((e) => ({ name: e.name })),
      };
      return slim;
    },
    resyncPeriodMs: ctx.resyncPeriodMs,
  });
  if (!informer.hasIndex('namespace')) informer.addIndex('namespace', byNamespaceIndex);
  return informer;
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
