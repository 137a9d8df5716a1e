// RegistryToken: mints a registry credential from a cloud identity, writes it
// to a kubernetes.io/dockerconfigjson Secret it owns, and renews it before it
// expires. Decisions are planRegistryToken's; this class reads the caches,
// mints (bounded per namespace and cluster-wide, taken round-robin by
// namespace), writes, and reports status and Events.

import type { V1Secret } from '@kubernetes/client-node';
import {
  RegistryTokenApiVersion,
  RegistryTokenKind,
  RegistryTokenResource,
  type RegistryToken,
  type RegistryTokenStatus,
} from '../../../generated/index.js';
import { staleCacheError } from '../../runtime/api-errors.js';
import { commonStatus, rfc3339 } from '../../runtime/conditions.js';
import { FairLimiter } from '../../runtime/fair-limiter.js';
import { splitKey, type Informer } from '../../runtime/informer.js';
import { type ResourceType } from '../../runtime/kube-client.js';
import { ControllerOperator, type ControllerGauge, type OperatorContext } from '../../runtime/operator.js';
import type { ReconcileResult } from '../../runtime/work-queue.js';
import { SecretsResource } from '../../shared-informers.js';
import { namedSecretWatches, type NamedSecretWatches } from '../../sharing/controllers/named-secrets.js';
import type { KeychainWatch } from '../keychain-watch.js';
import type { CloudIdentity } from '../types.js';
import {
  currentCredential,
  DOCKER_CONFIG_JSON_TYPE,
  mintedSecretContent,
  mintRetryDelayMs,
  planRegistryToken,
  refreshAt,
  tallyRegistryTokens,
  type CurrentCredential,
  type FailureReason,
  type Plan,
  type SecretView,
  type ValidToken,
} from './registry-token-plan.js';

export const RegistryTokens: ResourceType = { ...RegistryTokenResource, kind: RegistryTokenKind };

/** Mints running at once across the cluster, and for one namespace. */
export const MAX_CONCURRENT_MINTS = 8;
export const MAX_CONCURRENT_MINTS_PER_NAMESPACE = 2;

export interface RegistryTokenControllerOptions {
  keychain: KeychainWatch;
  now?: () => number;
  maxConcurrentMints?: number;
  maxConcurrentMintsPerNamespace?: number;
}

/**
 * Bounds mints: at most `perNamespace` of one namespace at once (its others
 * wait without taking a cluster-wide slot), and at most `total` in all,
 * handed out round-robin by namespace.
 */
export class MintLimiter {
  private readonly total: FairLimiter;
  private readonly namespaces = new Map<string, FairLimiter>();

  constructor(
    total: number,
    private readonly perNamespace: number,
  ) {
    this.total = new FairLimiter(total);
  }

  async run<T>(namespace: string, work: () => Promise<T>): Promise<T> {
    let own = this.namespaces.get(namespace);
    if (!own) {
      own = new FairLimiter(this.perNamespace);
      this.namespaces.set(namespace, own);
    }
    const limiter = own;
    try {
      return await limiter.run('', () => this.total.run(namespace, work));
    } finally {
      if (limiter.active === 0 && limiter.queued === 0 && this.namespaces.get(namespace) === limiter) {
        this.namespaces.delete(namespace);
      }
    }
  }

  get active(): number {
    return this.total.active;
  }
}

const WATCH_USER = 'registrytoken';
/** How long a Secret this controller wrote stands in for a cache that does not show it yet. */
const WRITTEN_TRUST_MS = 10_000;
/** Reasons of the Events. */
export const REFRESHED_EVENT = 'CredentialRefreshed';

type Outcome =
  | { ok: true; current: CurrentCredential }
  | { ok: false; reason: FailureReason; message: string; current?: CurrentCredential };

export class RegistryTokenController extends ControllerOperator {
  private tokens!: Informer<RegistryToken>;
  private secrets!: NamedSecretWatches;
  private readonly keychain: KeychainWatch;
  private readonly now: () => number;
  private readonly mints: MintLimiter;
  /** Consecutive failed mints per token (for the backoff); forgotten on success. */
  private readonly failures = new Map<string, number>();
  /**
   * The Secret each token last wrote, and the resourceVersion it replaced: until the cache shows
   * the write, the written copy is the truth (no second mint for a lagging cache).
   */
  private readonly written = new Map<
    string,
    { replaced: string | undefined; secret: V1Secret; atMs: number }
  >();

  constructor(ctx: OperatorContext, options: RegistryTokenControllerOptions) {
    super(ctx, 'registrytoken');
    this.keychain = options.keychain;
    this.now = options.now ?? Date.now;
    this.mints = new MintLimiter(
      options.maxConcurrentMints ?? MAX_CONCURRENT_MINTS,
      options.maxConcurrentMintsPerNamespace ?? MAX_CONCURRENT_MINTS_PER_NAMESPACE,
    );
  }

  override metricGauges(): ControllerGauge[] {
    // Set by init(); a scrape may come before it.
    const tally = () =>
      tallyRegistryTokens(
        ((this.tokens as Informer<RegistryToken> | undefined)?.list() ?? []).map((t) => t.status),
      );
    return [
      {
        name: 'regcred_registry_tokens',
        help: 'RegistryTokens by whether their last reconcile succeeded (ready="true") or failed or has not run yet.',
        labelNames: ['ready'],
        series: () => {
          const { ready, notReady } = tally();
          return [
            { labels: { ready: 'true' }, value: ready },
            { labels: { ready: 'false' }, value: notReady },
          ];
        },
      },
      {
        name: 'regcred_registry_token_earliest_expiry_timestamp_seconds',
        help: 'Unix time at which the first RegistryToken credential expires (status.expiresAt); 0 when none holds one.',
        value: () => (tally().earliestExpiryMs ?? 0) / 1000,
      },
    ];
  }

  protected async init(): Promise<void> {
    this.secrets = namedSecretWatches(this.ctx);
    this.tokens = this.watch(
      this.ctx.informers.get<RegistryToken>('registrytokens', {
        resource: RegistryTokens,
        resyncPeriodMs: this.ctx.resyncPeriodMs,
      }),
    );
    const user = (t: RegistryToken) => `${WATCH_USER}:${t.metadata!.namespace}/${t.metadata!.name}`;
    const names = (t: RegistryToken) =>
      [t.spec?.secretName, t.spec?.credentialsSecretRef?.name].filter((n): n is string => !!n);
    const track = (t: RegistryToken, op: 'acquire' | 'release') => {
      for (const name of names(t)) this.secrets[op](t.metadata!.namespace!, name, user(t));
    };
    this.tokens.addIndex('secret', (t) => names(t).map((n) => `${t.metadata!.namespace}/${n}`));
    this.tokens.addHandlers({
      onAdd: (t) => track(t, 'acquire'),
      onUpdate: (before, after) => {
        track(after, 'acquire');
        const kept = new Set(names(after));
        for (const name of names(before)) {
          if (!kept.has(name)) this.secrets.release(before.metadata!.namespace!, name, user(before));
        }
      },
      onDelete: (t) => {
        track(t, 'release');
        const key = `${t.metadata!.namespace}/${t.metadata!.name}`;
        this.failures.delete(key);
        this.written.delete(key);
      },
    });
    this.secrets.onChange((namespace, name) => {
      for (const t of this.tokens.byIndex('secret', `${namespace}/${name}`)) {
        this.queue.add(`${t.metadata!.namespace}/${t.metadata!.name}`);
      }
    });
    this.keychain.start();
    this.keychain.onChange(() => {
      for (const key of this.tokens.keys()) this.queue.add(key);
    });
  }

  protected async reconcile(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = splitKey(key);
    if (!namespace) return;
    const token = this.tokens.get(namespace, name);
    if (!token || token.metadata?.deletionTimestamp) return;
    const settings = await this.keychain.settings();
    const spec = token.spec ?? {};
    const credentialsName = spec.credentialsSecretRef?.name;
    const credentialsSecret = credentialsName
      ? await this.secrets.get(namespace, credentialsName)
      : undefined;
    const target = this.targetSecret(
      key,
      spec.secretName ? await this.secrets.get(namespace, spec.secretName) : undefined,
    );
    const plan = planRegistryToken({
      token: {
        namespace,
        name,
        uid: token.metadata?.uid ?? '',
        spec: {
          provider: spec.provider,
          registry: spec.registry,
          secretName: spec.secretName,
          credentialsSecretRef: spec.credentialsSecretRef ?? null,
          ...(spec.refreshBefore !== undefined ? { refreshBefore: spec.refreshBefore } : {}),
        },
      },
      registryTokenNamespaces: settings.registryTokenNamespaces,
      configSecret: this.keychain.secretKey,
      servesHost: (provider, host) => this.keychain.keychain.provider(provider)?.servesHost(host) ?? false,
      ...(credentialsSecret ? { credentialsSecret: view(credentialsSecret) } : {}),
      ...(target ? { target: view(target) } : {}),
      nowMs: this.now(),
    });
    const { outcome, requeueAfterMs } = await this.apply(key, token, plan, credentialsSecret);
    await this.report(token, outcome);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** The cached Secret, or the one this controller wrote when the cache does not show that write yet. */
  private targetSecret(key: string, cached: V1Secret | undefined): V1Secret | undefined {
    const written = this.written.get(key);
    if (!written) return cached;
    const cachedVersion = cached?.metadata?.resourceVersion;
    // A watch delivers a write within moments; past that, the cache is the truth (e.g. the Secret was deleted).
    if (cachedVersion === written.replaced && this.now() - written.atMs < WRITTEN_TRUST_MS)
      return written.secret;
    this.written.delete(key);
    return cached;
  }

  private async apply(
    key: string,
    token: RegistryToken,
    plan: Plan,
    credentialsSecret: V1Secret | undefined,
  ): Promise<{ outcome: Outcome; requeueAfterMs?: number }> {
    const namespace = token.metadata!.namespace!;
    switch (plan.action) {
      case 'refuse': {
        this.failures.delete(key);
        if (plan.deleteOwned) {
          this.written.delete(key);
          await this.client.delete(SecretsResource, namespace, plan.deleteOwned.name, {
            ...(plan.deleteOwned.uid ? { uid: plan.deleteOwned.uid } : {}),
            ...(plan.deleteOwned.resourceVersion
              ? { resourceVersion: plan.deleteOwned.resourceVersion }
              : {}),
          });
          this.log.info('deleted the Secret of a RegistryToken whose identity is no longer allowed', {
            registryToken: key,
            secret: plan.deleteOwned.name,
          });
        }
        return {
          outcome: {
            ok: false,
            reason: plan.reason,
            message: plan.message,
            ...(plan.current ? { current: plan.current } : {}),
          },
        };
      }
      case 'keep':
        this.failures.delete(key);
        return {
          outcome: { ok: true, current: plan.current },
          requeueAfterMs: Math.max(1000, plan.refreshAtMs - this.now()),
        };
      case 'mint':
        return this.mint(key, token, plan.token, plan, credentialsSecret);
    }
  }

  private async mint(
    key: string,
    token: RegistryToken,
    valid: ValidToken,
    plan: Extract<Plan, { action: 'mint' }>,
    credentialsSecret: V1Secret | undefined,
  ): Promise<{ outcome: Outcome; requeueAfterMs?: number }> {
    const namespace = token.metadata!.namespace!;
    const identity: CloudIdentity =
      valid.credentialsSecretName && credentialsSecret
        ? {
            kind: 'secret',
            namespace,
            name: valid.credentialsSecretName,
            data: Object.fromEntries(
              Object.entries(credentialsSecret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
            ),
          }
        : { kind: 'ambient' };
    this.log.debug('minting a registry credential', {
      registryToken: key,
      provider: valid.provider,
      why: plan.why,
    });
    let minted;
    try {
      minted = await this.mints.run(namespace, () =>
        this.keychain.keychain.mintFresh(valid.provider, valid.host, identity),
      );
    } catch (err) {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = mintRetryDelayMs(failures);
      const reason = err instanceof Error ? err.message : String(err);
      const kept =
        plan.current && plan.current.expiresAtMs > this.now()
          ? '; the Secret keeps the previous credential until it expires'
          : '';
      return {
        outcome: {
          ok: false,
          reason: 'MintFailed',
          message: `minting a ${valid.provider} credential for ${valid.host} failed: ${reason}${kept}`,
          ...(plan.current ? { current: plan.current } : {}),
        },
        requeueAfterMs: delay,
      };
    }
    const nowMs = this.now();
    const content = mintedSecretContent(valid, minted, nowMs);
    const secret: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: DOCKER_CONFIG_JSON_TYPE,
      metadata: {
        namespace,
        name: valid.secretName,
        annotations: { ...(plan.replace?.annotations ?? {}), ...content.annotations },
        ownerReferences: [
          {
            apiVersion: RegistryTokenApiVersion,
            kind: RegistryTokenKind,
            name: token.metadata!.name!,
            uid: token.metadata!.uid!,
            controller: true,
            blockOwnerDeletion: false,
          },
        ],
        ...(plan.replace?.resourceVersion ? { resourceVersion: plan.replace.resourceVersion } : {}),
      },
      data: content.data,
    };
    const replaced = plan.replace?.resourceVersion;
    const stored = await this.writeSecret(secret, plan.replace);
    this.written.set(key, { replaced, secret: stored, atMs: this.now() });
    this.failures.delete(key);
    const current = currentCredential(view(stored)) ?? {
      refreshedAtMs: nowMs,
      expiresAtMs: minted.expiresAt.getTime(),
    };
    this.ctx.events.event(
      token,
      'Normal',
      REFRESHED_EVENT,
      `Minted a ${valid.provider} credential for ${valid.host} (${plan.why}), valid until ${rfc3339(minted.expiresAt)}; wrote Secret ${valid.secretName}`,
    );
    return {
      outcome: { ok: true, current },
      requeueAfterMs: Math.max(1000, refreshAt(current, valid.refreshBeforeMs) - nowMs),
    };
  }

  private async writeSecret(secret: V1Secret, replace: SecretView | undefined): Promise<V1Secret> {
    try {
      if (replace) {
        if (replace.type !== DOCKER_CONFIG_JSON_TYPE) {
          // The type of a Secret cannot change: replace the object.
          await this.client.delete(SecretsResource, secret.metadata!.namespace, secret.metadata!.name!, {
            ...(replace.uid ? { uid: replace.uid } : {}),
            ...(replace.resourceVersion ? { resourceVersion: replace.resourceVersion } : {}),
          });
          delete secret.metadata!.resourceVersion;
          return await this.client.create(SecretsResource, secret);
        }
        return await this.client.replace(SecretsResource, secret);
      }
      return await this.client.create(SecretsResource, secret);
    } catch (err) {
      throw staleCacheError(err, 'Secret');
    }
  }

  private async report(token: RegistryToken, outcome: Outcome): Promise<void> {
    const base = commonStatus(
      token.status,
      token.metadata?.generation,
      outcome.ok
        ? { type: 'ReconcileSucceeded', reason: 'CredentialCurrent' }
        : { type: 'ReconcileFailed', reason: outcome.reason, message: outcome.message },
    );
    const status: RegistryTokenStatus = { ...base };
    if (outcome.current) {
      status.expiresAt = rfc3339(new Date(outcome.current.expiresAtMs));
      status.lastRefreshTime = rfc3339(new Date(outcome.current.refreshedAtMs));
    }
    const written = await this.writeStatus(RegistryTokens, token, status);
    if (written && !outcome.ok && token.status?.usefulErrorMessage !== status.usefulErrorMessage) {
      this.ctx.events.event(token, 'Warning', outcome.reason, outcome.message);
    }
  }
}

function view(secret: V1Secret): SecretView {
  const md = secret.metadata ?? {};
  return {
    ...(secret.type !== undefined ? { type: secret.type } : {}),
    ...(md.uid !== undefined ? { uid: md.uid } : {}),
    ...(md.resourceVersion !== undefined ? { resourceVersion: md.resourceVersion } : {}),
    ...(md.annotations ? { annotations: md.annotations } : {}),
    ...(md.ownerReferences ? { ownerReferences: md.ownerReferences } : {}),
    ...(secret.data ? { data: secret.data } : {}),
  };
}
