import type { V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { SecretExport, SecretImport } from '../../../generated/index.js';
import { commonStatus } from '../../runtime/conditions.js';
import { byNamespaceIndex, splitKey, type Informer } from '../../runtime/informer.js';
import { staleCacheError } from '../../runtime/api-errors.js';
import { ControllerOperator, type OperatorContext } from '../../runtime/operator.js';
import { OutcomeEvents, settledFromStatus } from '../../runtime/outcome-events.js';
import {
  namespacesInformer,
  secretExportsInformer,
  SecretImports,
  secretImportsInformer,
  SecretsResource,
} from '../../shared-informers.js';
import {
  decideImport,
  NO_MATCH_MESSAGE,
  placeholderAnnotationIgnoredMessage,
  type ExistingSecret,
  type ImportDecision,
  type SecretImportInput,
} from '../import.js';
import { isPlaceholder } from '../placeholder.js';
import { exportInput, namespaceContentChanged, namespaceInput, secretInput } from './inputs.js';
import { namedSecretWatches, type NamedSecretWatches } from './named-secrets.js';

const BY_SOURCE = 'source';
/** Event reason: the SecretImport carries the placeholder annotation, which its copy does not act on. */
export const PLACEHOLDER_ANNOTATION_IGNORED = 'PlaceholderAnnotationIgnored';
const sourceKey = (imp: SecretImport) => `${imp.spec?.fromNamespace ?? ''}/${imp.metadata?.name}`;

/**
 * Copies an exported Secret into the SecretImport's namespace while the export
 * allows it, reverts edits to the copy, recreates it when deleted, and deletes
 * it when the export stops allowing it. A same-named Secret this import does
 * not control is never touched (Beyond upstream).
 */
export class SecretImportController extends ControllerOperator {
  private imports!: Informer<SecretImport>;
  private exports!: Informer<SecretExport>;
  private namespaces!: Informer<V1Namespace>;
  private secrets!: NamedSecretWatches;

  private readonly outcomes: OutcomeEvents;

  constructor(ctx: OperatorContext) {
    super(ctx, 'secretimport');
    this.outcomes = new OutcomeEvents(ctx.events);
  }

  protected async init(): Promise<void> {
    this.secrets = namedSecretWatches(this.ctx);
    this.imports = this.watch(secretImportsInformer(this.ctx));
    this.imports.addIndex(BY_SOURCE, (imp) => [sourceKey(imp)]);
    this.imports.addIndex('namespace', byNamespaceIndex);
    // Watch the import's copy, and its source (the export's Secret) even before an export exists.
    const user = (imp: SecretImport) => `secretimport:${imp.metadata!.namespace}`;
    const trackSource = (imp: SecretImport, op: 'acquire' | 'release') => {
      const from = imp.spec?.fromNamespace;
      if (from) this.secrets[op](from, imp.metadata!.name!, user(imp));
    };
    const trackCopy = (imp: SecretImport, op: 'acquire' | 'release') =>
      this.secrets[op](imp.metadata!.namespace!, imp.metadata!.name!, user(imp));
    this.imports.addHandlers({
      onAdd: (imp) => {
        trackCopy(imp, 'acquire');
        trackSource(imp, 'acquire');
      },
      onUpdate: (before, after) => {
        // Only the source moves; the copy's name and namespace never change.
        if (before.spec?.fromNamespace === after.spec?.fromNamespace) return;
        trackSource(after, 'acquire');
        trackSource(before, 'release');
      },
      onDelete: (imp) => {
        trackSource(imp, 'release');
        trackCopy(imp, 'release');
      },
    });
    this.exports = secretExportsInformer(this.ctx);
    const bySource = (namespace: string, name: string) => {
      for (const imp of this.imports.byIndex(BY_SOURCE, `${namespace}/${name}`)) {
        this.queue.add(`${imp.metadata!.namespace}/${imp.metadata!.name}`);
      }
    };
    const exportChanged = (e: SecretExport) => bySource(e.metadata!.namespace!, e.metadata!.name!);
    this.exports.addHandlers({
      onAdd: exportChanged,
      onUpdate: (_b, a) => exportChanged(a),
      onDelete: exportChanged,
    });
    this.secrets.onChange((namespace, name) => {
      bySource(namespace, name);
      if (this.imports.get(namespace, name)) this.queue.add(`${namespace}/${name}`);
    });
    this.namespaces = namespacesInformer(this.ctx);
    const namespaceChanged = (ns: V1Namespace) => {
      for (const imp of this.imports.byIndex('namespace', ns.metadata!.name!)) {
        this.queue.add(`${imp.metadata!.namespace}/${imp.metadata!.name}`);
      }
    };
    this.namespaces.addHandlers({
      onAdd: namespaceChanged,
      onDelete: namespaceChanged,
      onUpdate: (before, after) => {
        if (namespaceContentChanged(before, after)) namespaceChanged(after);
      },
    });
  }

  protected async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    if (!namespace) return;
    const imp = this.imports.get(namespace, name);
    if (!imp || imp.metadata?.deletionTimestamp) {
      if (!imp) this.outcomes.forget(key);
      return;
    }
    const from = imp.spec?.fromNamespace ?? '';
    const ns = this.namespaces.get(undefined, namespace);
    const source = from ? await this.secrets.get(from, name) : undefined;
    const copy = await this.secrets.get(namespace, name);
    const input: SecretImportInput = {
      apiVersion: imp.apiVersion,
      kind: imp.kind,
      namespace,
      name,
      uid: imp.metadata?.uid ?? '',
      labels: imp.metadata?.labels,
      annotations: imp.metadata?.annotations,
      spec: { fromNamespace: from },
    };
    const decision = decideImport(
      input,
      this.exports
        .list()
        .filter((e) => e.metadata?.namespace === from)
        .map(exportInput),
      source ? secretInput(source) : undefined,
      ns ? namespaceInput(ns) : { name: namespace, labels: {}, annotations: {} },
      copy ? existingSecret(copy) : undefined,
    );
    await this.apply(decision);
    const wroteCopy =
      decision.action === 'create' || decision.action === 'update' || decision.action === 'recreate';
    // Reported when the copy is written, so a steady state repeats nothing.
    if (wroteCopy && isPlaceholder({ annotations: input.annotations })) {
      this.ctx.events.event(
        imp,
        'Warning',
        PLACEHOLDER_ANNOTATION_IGNORED,
        placeholderAnnotationIgnoredMessage(input),
      );
    }
    const outcome =
      decision.status.type === 'ReconcileSucceeded'
        ? { type: 'ReconcileSucceeded' as const, reason: 'Imported' }
        : {
            type: 'ReconcileFailed' as const,
            reason: failureReason(decision),
            message: decision.status.message,
          };
    await this.writeStatus(SecretImports, imp, commonStatus(imp.status, imp.metadata?.generation, outcome));
    this.outcomes.report(key, imp, settledFromStatus(imp.status), {
      failed: outcome.type === 'ReconcileFailed',
      message: outcome.type === 'ReconcileFailed' ? outcome.message : undefined,
    });
  }

  private async apply(decision: ImportDecision): Promise<void> {
    try {
      switch (decision.action) {
        case 'create':
          await this.client.create(SecretsResource, decision.secret);
          return;
        case 'update':
          await this.client.replace(SecretsResource, decision.secret);
          return;
        case 'recreate': {
          const d = decision.delete;
          await this.client.delete(SecretsResource, d.namespace, d.name, {
            uid: d.uid,
            resourceVersion: d.resourceVersion,
          });
          await this.client.create(SecretsResource, decision.secret);
          return;
        }
        case 'delete': {
          const d = decision.delete;
          await this.client.delete(SecretsResource, d.namespace, d.name, {
            uid: d.uid,
            resourceVersion: d.resourceVersion,
          });
          return;
        }
        case 'none':
        case 'refuse':
          return;
      }
    } catch (err) {
      // Someone changed the Secret since the cache saw it: the watch event requeues with the new state,
      // and the queue retries the stale write quietly.
      throw staleCacheError(err, 'Secret');
    }
  }
}

function failureReason(decision: ImportDecision): string {
  if (decision.action === 'refuse') return 'SecretNotControlled';
  if (decision.status.type === 'ReconcileFailed' && decision.status.message === NO_MATCH_MESSAGE)
    return 'NoMatchingExport';
  return 'InvalidSpec';
}

function existingSecret(s: V1Secret): ExistingSecret {
  return {
    namespace: s.metadata?.namespace ?? '',
    name: s.metadata?.name ?? '',
    uid: s.metadata?.uid,
    resourceVersion: s.metadata?.resourceVersion,
    type: s.type ?? 'Opaque',
    data: s.data,
    labels: s.metadata?.labels,
    annotations: s.metadata?.annotations,
    ownerReferences: s.metadata?.ownerReferences?.map((r) => ({ ...r })),
    immutable: s.immutable,
  };
}
