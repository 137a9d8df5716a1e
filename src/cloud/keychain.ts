// The cloud providers of this process and the credentials they minted.
//
// Fetches ask `credential()`: a credential per (provider, registry, identity)
// is reused until shortly before it expires (reuseUntil), concurrent askers
// of one key share one mint, a failure is remembered briefly so a burst of
// fetches does not hammer a metadata server that is not there, and the cache
// is bounded. RegistryTokens ask `mintFresh()`: they need a new credential
// each time they renew. The identity enters cache keys only as an HMAC under
// a per-process random key, so one tenant's Secret never yields another's
// credential and no key material is kept in clear beside the credential.

import { createHmac, randomBytes } from 'node:crypto';

import { domainMetrics, type CloudMintPurpose } from '../runtime/domain-metrics.js';
import { BoundedCache, reuseUntil } from './keychain-cache.js';
import { CloudProxy, type CloudProxySettings } from './proxy.js';
import {
  CLOUD_PROVIDER_NAMES,
  type CloudEnvironment,
  type CloudIdentity,
  type CloudProviderName,
  type CloudRegistryProvider,
  type MintedRegistryCredential,
} from './types.js';

export interface ProviderFactoryOptions {
  /** Hosts this provider serves beyond its built-in patterns (iaasKeychainHosts). */
  extraHosts: readonly string[];
  env: CloudEnvironment;
  /** PEM certificates trusted beside the system roots (caCerts of the operator configuration). */
  caCerts?: string;
  /** httpsProxy and noProxy of the operator configuration, for token endpoints. */
  proxy?: CloudProxy;
}

export interface ProviderSettings {
  extraHosts: Readonly<Record<CloudProviderName, readonly string[]>>;
  caCerts?: string;
  proxy?: CloudProxySettings;
}

export type ProviderFactory = (options: ProviderFactoryOptions) => CloudRegistryProvider;

export interface CloudKeychainOptions {
  factories: Partial<Record<CloudProviderName, ProviderFactory>>;
  env?: CloudEnvironment;
  now?: () => number;
  /** Credentials kept at once (default 1000). */
  maxEntries?: number;
  /** How long a failed mint is answered from memory (default 10 s). */
  failureTtlMs?: number;
  /** Deadline of one mint, whoever waits for it (default 30 s). */
  mintTimeoutMs?: number;
}

export const DEFAULT_FAILURE_TTL_MS = 10_000;
export const DEFAULT_MINT_TIMEOUT_MS = 30_000;

const IDENTITY_KEY = randomBytes(32);

/** A cache key for the identity; equal identities (same Secret, same data) give equal keys. */
export function identityKey(identity: CloudIdentity): string {
  if (identity.kind === 'ambient') return 'ambient';
  const hmac = createHmac('sha256', IDENTITY_KEY);
  hmac.update(`${identity.namespace}\0${identity.name}\0`);
  for (const key of Object.keys(identity.data).sort()) {
    const value = identity.data[key]!;
    hmac.update(`${key.length}:${key}${value.length}:`);
    hmac.update(value);
  }
  return `secret:${hmac.digest('hex')}`;
}

/** The message of a failed mint, kept short; providers already keep secrets out of it. */
function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}

export class KeychainError extends Error {
  override readonly name = 'KeychainError';
  constructor(
    readonly provider: CloudProviderName,
    message: string,
    readonly cached: boolean,
  ) {
    super(message);
  }
}

export class CloudKeychain {
  private readonly factories: Partial<Record<CloudProviderName, ProviderFactory>>;
  private readonly env: CloudEnvironment;
  private readonly now: () => number;
  private readonly failureTtlMs: number;
  private readonly mintTimeoutMs: number;
  private readonly cache: BoundedCache<MintedRegistryCredential>;
  private readonly inFlight = new Map<string, Promise<MintedRegistryCredential>>();
  private readonly providers = new Map<CloudProviderName, CloudRegistryProvider>();
  private hostsFingerprint: string | undefined;
  private currentProxy: CloudProxy | undefined;

  constructor(options: CloudKeychainOptions) {
    this.factories = options.factories;
    this.env = options.env ?? process.env;
    this.now = options.now ?? Date.now;
    this.failureTtlMs = options.failureTtlMs ?? DEFAULT_FAILURE_TTL_MS;
    this.mintTimeoutMs = options.mintTimeoutMs ?? DEFAULT_MINT_TIMEOUT_MS;
    this.cache = new BoundedCache(options.maxEntries ?? 1000, this.now);
    this.configure({ extraHosts: { ecr: [], gcr: [], acr: [] } });
  }

  /** (Re)builds the providers when their hosts, trusted CAs or proxy changed; cached credentials stay valid. */
  configure(settings: ProviderSettings): void {
    const { extraHosts, caCerts } = settings;
    const proxySettings = {
      httpsProxy: settings.proxy?.httpsProxy ?? '',
      noProxy: settings.proxy?.noProxy ?? '',
    };
    const fingerprint = JSON.stringify([
      CLOUD_PROVIDER_NAMES.map((name) => extraHosts[name]),
      caCerts ?? '',
      proxySettings,
    ]);
    if (fingerprint === this.hostsFingerprint) return;
    this.hostsFingerprint = fingerprint;
    const proxy = proxySettings.httpsProxy ? new CloudProxy(proxySettings) : undefined;
    this.currentProxy = proxy;
    for (const name of CLOUD_PROVIDER_NAMES) {
      const factory = this.factories[name];
      if (factory) {
        this.providers.set(
          name,
          factory({
            extraHosts: extraHosts[name],
            env: this.env,
            ...(caCerts ? { caCerts } : {}),
            ...(proxy ? { proxy } : {}),
          }),
        );
      }
    }
  }

  /** The proxy the providers use (from the last configure), undefined when none is set. */
  get proxy(): CloudProxy | undefined {
    return this.currentProxy;
  }

  /** The provider by name; undefined when this build has none. */
  provider(name: CloudProviderName): CloudRegistryProvider | undefined {
    return this.providers.get(name);
  }

  /** The first of `candidates` (in CLOUD_PROVIDER_NAMES order) that serves `host`. */
  providerForHost(host: string, candidates: Iterable<CloudProviderName>): CloudRegistryProvider | undefined {
    const wanted = new Set(candidates);
    for (const name of CLOUD_PROVIDER_NAMES) {
      const provider = this.providers.get(name);
      if (wanted.has(name) && provider?.servesHost(host)) return provider;
    }
    return undefined;
  }

  /** Which provider serves `host` at all (for messages); undefined when none does. */
  providerServing(host: string): CloudProviderName | undefined {
    return this.providerForHost(host, CLOUD_PROVIDER_NAMES)?.name;
  }

  /**
   * A credential for the registry: cached while good, else minted once for
   * every concurrent asker. Rejects with a KeychainError (also for a failure
   * remembered from a mint a moment ago).
   */
  async credential(
    name: CloudProviderName,
    host: string,
    identity: CloudIdentity,
    signal?: AbortSignal,
  ): Promise<MintedRegistryCredential> {
    const provider = this.providers.get(name);
    if (!provider) throw new KeychainError(name, `no ${name} provider in this build`, false);
    const key = `${name}\n${host}\n${identityKey(identity)}`;
    const cached = this.cache.get(key);
    if (cached?.kind === 'value') return cached.value;
    if (cached?.kind === 'error') throw new KeychainError(name, cached.message, true);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.mint(provider, host, identity, 'fetch')
        .then(
          (value) => {
            const mintedAt = this.now();
            this.cache.set(key, {
              kind: 'value',
              value,
              reuseUntilMs: reuseUntil(mintedAt, value.expiresAt.getTime()),
            });
            return value;
          },
          (err: unknown) => {
            const message = reason(err);
            this.cache.set(key, { kind: 'error', message, untilMs: this.now() + this.failureTtlMs });
            throw new KeychainError(name, message, false);
          },
        )
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return signal ? abortable(pending, signal) : pending;
  }

  /** A new credential, never from the cache (a RegistryToken renewing its Secret). */
  async mintFresh(
    name: CloudProviderName,
    host: string,
    identity: CloudIdentity,
    signal?: AbortSignal,
  ): Promise<MintedRegistryCredential> {
    const provider = this.providers.get(name);
    if (!provider) throw new KeychainError(name, `no ${name} provider in this build`, false);
    try {
      return await this.mint(provider, host, identity, 'registrytoken', signal);
    } catch (err) {
      throw new KeychainError(name, reason(err), false);
    }
  }

  /** Cached credentials and failures (for tests and metrics). */
  get cachedCount(): number {
    return this.cache.size;
  }

  private async mint(
    provider: CloudRegistryProvider,
    host: string,
    identity: CloudIdentity,
    purpose: CloudMintPurpose,
    signal?: AbortSignal,
  ): Promise<MintedRegistryCredential> {
    const deadline = AbortSignal.timeout(this.mintTimeoutMs);
    const combined = signal ? AbortSignal.any([deadline, signal]) : deadline;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const minted = await provider.mint(host, identity, combined);
      if (!(minted.expiresAt instanceof Date) || Number.isNaN(minted.expiresAt.getTime())) {
        throw new Error(`the ${provider.name} provider returned a credential without a valid expiry`);
      }
      domainMetrics.cloudCredentialMinted(provider.name, purpose, 'succeeded', seconds());
      return minted;
    } catch (err) {
      domainMetrics.cloudCredentialMinted(provider.name, purpose, 'failed', seconds());
      throw err;
    }
  }
}

/** The promise, or a rejection as soon as `signal` aborts (the shared mint goes on for the others). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted)
    return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
