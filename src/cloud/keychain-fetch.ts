// The keychain as fetches see it: for a registry the stage's secretRef has
// no credential for, the operator's own cloud identity, when iaasKeychains
// enables the provider serving that host and iaasKeychainNamespaces admits
// the namespace.

import type { FetchKeychain, KeychainAnswer } from '../packaging/registry-fetch.js';
import { keychainAllowed, normalizeHost, type KeychainSettings } from './keychain-config.js';
import { KeychainError, type CloudKeychain } from './keychain.js';

export interface KeychainSource {
  keychain: CloudKeychain;
  settings(): Promise<KeychainSettings>;
}

const AMBIENT = { kind: 'ambient' } as const;

/**
 * What the keychain answers for one registry. Pure decision plus the
 * keychain's (cached) mint; a failure message names the provider and the
 * reason only.
 */
export async function keychainAnswer(
  source: KeychainSource,
  namespace: string,
  registry: string,
  signal?: AbortSignal,
): Promise<KeychainAnswer> {
  const settings = await source.settings();
  const host = normalizeHost(registry);
  if (host === undefined) return { kind: 'none' };
  const provider = source.keychain.providerServing(host);
  if (provider === undefined) return { kind: 'none' };
  const allowed = keychainAllowed(settings, provider, namespace);
  if (!allowed.ok) {
    // Only worth a note when keychains are on at all: otherwise every ECR pull would mention it.
    return settings.keychains.size > 0 || settings.keychainsFrom !== 'default'
      ? { kind: 'none', note: `the ${provider} keychain was not used: ${allowed.reason}` }
      : { kind: 'none' };
  }
  try {
    const minted = await source.keychain.credential(provider, host, AMBIENT, signal);
    return { kind: 'credential', provider, username: minted.username, password: minted.password };
  } catch (err) {
    if (err instanceof KeychainError) {
      return {
        kind: 'failed',
        provider,
        error: err.cached ? `${err.message} (remembered from a failure moments ago)` : err.message,
      };
    }
    throw err;
  }
}

export function fetchKeychain(source: KeychainSource): FetchKeychain {
  return { lookup: (namespace, registry, signal) => keychainAnswer(source, namespace, registry, signal) };
}
