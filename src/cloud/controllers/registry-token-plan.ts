// What a RegistryToken needs now: refuse (with the reason), mint a new
// credential, or keep the Secret until its refresh time. Pure: the
// controller passes the token, the Secrets it sees and the clock, then does
// the I/O. Level-triggered: the Secret's own annotations say when its
// credential was minted, until when it is valid and for which inputs, so a
// restart or a missed event loses nothing.

import { createHash } from 'node:crypto';
import { parseGoDuration } from '../../packaging/duration.js';
import { rfc3339 } from '../../runtime/conditions.js';
import { normalizeHost } from '../keychain-config.js';
import { CLOUD_PROVIDER_NAMES, type CloudProviderName } from '../types.js';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';

/** When the credential in the Secret expires (RFC 3339). */
export const EXPIRES_AT_ANNOTATION = 'regcred.dev/expires-at';
/** When the credential in the Secret was minted (RFC 3339). */
export const REFRESHED_AT_ANNOTATION = 'regcred.dev/refreshed-at';
/** A hash of what the credential was minted for (provider, registry, identity); a change mints again. */
export const MINTED_FOR_ANNOTATION = 'regcred.dev/minted-for';

export const DEFAULT_REFRESH_BEFORE_MS = 60 * 60_000;
/** Never renew sooner than this after minting, whatever the lifetime (a credential living seconds would spin). */
export const MIN_REFRESH_INTERVAL_MS = 5_000;

export interface TokenInput {
  namespace: string;
  name: string;
  uid: string;
  spec: {
    provider?: string;
    registry?: string;
    secretName?: string;
    credentialsSecretRef?: { name?: string } | null;
    refreshBefore?: string;
  };
}

export interface SecretView {
  type?: string;
  uid?: string;
  resourceVersion?: string;
  annotations?: Record<string, string>;
  ownerReferences?: ReadonlyArray<{ uid?: string; controller?: boolean }>;
  data?: Record<string, string>;
}

export interface PlanInput {
  token: TokenInput;
  /** Namespaces whose RegistryTokens may use the operator's own identity. */
  registryTokenNamespaces: ReadonlySet<string>;
  /** Where that list is configured, for the message. */
  configSecret: string;
  /** Whether the provider serves the host (built-in patterns plus iaasKeychainHosts). */
  servesHost: (provider: CloudProviderName, host: string) => boolean;
  /** The Secret of spec.credentialsSecretRef; undefined when absent or not referenced. */
  credentialsSecret?: SecretView;
  /** The Secret spec.secretName names; undefined when absent. */
  target?: SecretView;
  nowMs: number;
}

export type FailureReason =
  'InvalidSpec' | 'IdentityNotAllowed' | 'CredentialsSecretMissing' | 'SecretNotOwned' | 'MintFailed';

/** The spec, checked. */
export interface ValidToken {
  provider: CloudProviderName;
  /** Lower-case host[:port] without :443: what providers match. */
  host: string;
  /** The registry as written (trimmed): the Secret's auths key. */
  registry: string;
  secretName: string;
  credentialsSecretName?: string;
  refreshBeforeMs: number;
  /** The mintedFor annotation a Secret minted now carries. */
  mintedFor: string;
}

export interface CurrentCredential {
  refreshedAtMs: number;
  expiresAtMs: number;
}

export type Plan =
  | {
      action: 'refuse';
      reason: FailureReason;
      message: string;
      /** The owned Secret to delete (the operator's identity is no longer allowed here). */
      deleteOwned?: { name: string; uid?: string; resourceVersion?: string };
      /** What the Secret still holds, for status. */
      current?: CurrentCredential;
    }
  | { action: 'mint'; token: ValidToken; why: string; current?: CurrentCredential; replace?: SecretView }
  | { action: 'keep'; token: ValidToken; current: CurrentCredential; refreshAtMs: number };

function validate(input: PlanInput): ValidToken | { error: string } {
  const { spec } = input.token;
  const provider = spec.provider ?? '';
  if (!(CLOUD_PROVIDER_NAMES as readonly string[]).includes(provider)) {
    return { error: `spec.provider must be one of ${CLOUD_PROVIDER_NAMES.join(', ')}` };
  }
  const name = provider as CloudProviderName;
  const registry = (spec.registry ?? '').trim();
  const host = normalizeHost(registry);
  if (host === undefined) {
    return {
      error: `spec.registry ${JSON.stringify(registry.slice(0, 80))} is not a registry host (host or host:port)`,
    };
  }
  if (!input.servesHost(name, host)) {
    return {
      error:
        `spec.registry ${host} is not a ${name} registry host (${BUILT_IN_HOSTS[name]}, ` +
        `or a host listed for ${name} in iaasKeychainHosts of the operator configuration)`,
    };
  }
  const secretName = spec.secretName ?? '';
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(secretName) || secretName.length > 253) {
    return { error: `spec.secretName ${JSON.stringify(secretName.slice(0, 80))} is not a Secret name` };
  }
  let refreshBeforeMs = DEFAULT_REFRESH_BEFORE_MS;
  if (spec.refreshBefore !== undefined && spec.refreshBefore !== '') {
    const ms = parseGoDuration(spec.refreshBefore);
    if (ms === undefined || ms <= 0) {
      return {
        error: `spec.refreshBefore ${JSON.stringify(spec.refreshBefore.slice(0, 32))} must be a positive duration such as 30m or 1h`,
      };
    }
    refreshBeforeMs = ms;
  }
  const credentialsSecretName = spec.credentialsSecretRef?.name || undefined;
  const identity = credentialsSecretName
    ? `secret:${credentialsSecretName}:${input.credentialsSecret?.uid ?? ''}:${input.credentialsSecret?.resourceVersion ?? ''}`
    : 'ambient';
  const mintedFor = createHash('sha256')
    .update(`${name}\n${registry}\n${identity}`)
    .digest('hex')
    .slice(0, 32);
  return {
    provider: name,
    host,
    registry,
    secretName,
    ...(credentialsSecretName ? { credentialsSecretName } : {}),
    refreshBeforeMs,
    mintedFor,
  };
}

const BUILT_IN_HOSTS: Record<CloudProviderName, string> = {
  ecr: '<account>.dkr.ecr.<region>.amazonaws.com',
  gcr: 'gcr.io, *.gcr.io or *.pkg.dev',
  acr: '*.azurecr.io',
};

export function isOwnedBy(secret: SecretView, uid: string): boolean {
  return (secret.ownerReferences ?? []).some((ref) => ref.uid === uid && ref.controller === true);
}

function timeAnnotation(secret: SecretView, key: string): number | undefined {
  const text = secret.annotations?.[key];
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** What the owned Secret holds, when its annotations say so. */
export function currentCredential(secret: SecretView | undefined): CurrentCredential | undefined {
  if (!secret) return undefined;
  const refreshedAtMs = timeAnnotation(secret, REFRESHED_AT_ANNOTATION);
  const expiresAtMs = timeAnnotation(secret, EXPIRES_AT_ANNOTATION);
  if (refreshedAtMs === undefined || expiresAtMs === undefined) return undefined;
  return { refreshedAtMs, expiresAtMs };
}

/** Renew this long before expiry: refreshBefore, at most half the lifetime. */
export function refreshAt(current: CurrentCredential, refreshBeforeMs: number): number {
  const lifetime = Math.max(0, current.expiresAtMs - current.refreshedAtMs);
  const before = Math.min(refreshBeforeMs, lifetime / 2);
  return Math.max(current.expiresAtMs - before, current.refreshedAtMs + MIN_REFRESH_INTERVAL_MS);
}

/** Whether the Secret's `.dockerconfigjson` still holds one whole credential for the registry. */
export function holdsCredentialFor(secret: SecretView, registry: string): boolean {
  if (secret.type !== DOCKER_CONFIG_JSON_TYPE) return false;
  const encoded = secret.data?.[DOCKER_CONFIG_JSON_KEY];
  if (encoded === undefined) return false;
  try {
    const doc = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as {
      auths?: Record<string, { username?: unknown; password?: unknown; auth?: unknown }>;
    };
    const keys = Object.keys(doc.auths ?? {});
    const entry = doc.auths?.[registry];
    if (keys.length !== 1 || !entry) return false;
    const { username, password, auth } = entry;
    return (
      typeof username === 'string' &&
      typeof password === 'string' &&
      auth === Buffer.from(`${username}:${password}`, 'utf8').toString('base64')
    );
  } catch {
    return false;
  }
}

export function identityNotAllowedMessage(
  namespace: string,
  allowed: ReadonlySet<string>,
  configSecret: string,
): string {
  const listed = [...allowed].sort();
  const shown =
    listed.length > 10
      ? `${listed.slice(0, 10).join(', ')} and ${listed.length - 10} more`
      : listed.join(', ');
  return (
    `spec.credentialsSecretRef is not set, so the operator's own cloud identity would mint the credential, ` +
    `but namespace ${namespace} is not listed in registryTokenNamespaces of the operator configuration Secret ` +
    `${configSecret} (allowed: ${shown}); set spec.credentialsSecretRef to a Secret of this namespace holding cloud credentials`
  );
}

export function planRegistryToken(input: PlanInput): Plan {
  const { token, target } = input;
  const owned = target !== undefined && isOwnedBy(target, token.uid);
  const current = owned ? currentCredential(target) : undefined;
  const withCurrent = current ? { current } : {};
  const valid = validate(input);
  if ('error' in valid)
    return { action: 'refuse', reason: 'InvalidSpec', message: valid.error, ...withCurrent };

  if (!valid.credentialsSecretName && !input.registryTokenNamespaces.has(token.namespace)) {
    return {
      action: 'refuse',
      reason: 'IdentityNotAllowed',
      message: identityNotAllowedMessage(token.namespace, input.registryTokenNamespaces, input.configSecret),
      // The cluster's credential does not stay behind in a namespace that may no longer hold it.
      ...(owned && target.uid
        ? {
            deleteOwned: { name: valid.secretName, uid: target.uid, resourceVersion: target.resourceVersion },
          }
        : {}),
    };
  }
  if (valid.credentialsSecretName && !input.credentialsSecret) {
    return {
      action: 'refuse',
      reason: 'CredentialsSecretMissing',
      message: `Secret ${valid.credentialsSecretName} (spec.credentialsSecretRef) not found in namespace ${token.namespace}`,
      ...withCurrent,
    };
  }
  if (target && !owned) {
    return {
      action: 'refuse',
      reason: 'SecretNotOwned',
      message:
        `Secret ${valid.secretName} exists and is not controlled by this RegistryToken; ` +
        `the operator never overwrites it (delete it or choose another spec.secretName)`,
    };
  }
  if (!target) return { action: 'mint', token: valid, why: `Secret ${valid.secretName} does not exist` };
  const replace = { replace: target };
  if (!current)
    return { action: 'mint', token: valid, why: 'the Secret has no expiry annotations', ...replace };
  if (target.annotations?.[MINTED_FOR_ANNOTATION] !== valid.mintedFor) {
    return {
      action: 'mint',
      token: valid,
      why: 'the provider, registry or identity changed',
      current,
      ...replace,
    };
  }
  if (!holdsCredentialFor(target, valid.registry)) {
    return {
      action: 'mint',
      token: valid,
      why: 'the Secret does not hold the credential',
      current,
      ...replace,
    };
  }
  const at = refreshAt(current, valid.refreshBeforeMs);
  if (input.nowMs >= at)
    return { action: 'mint', token: valid, why: 'the credential is due for renewal', current, ...replace };
  return { action: 'keep', token: valid, current, refreshAtMs: at };
}

/** The Secret's data and annotations for a freshly minted credential. */
export function mintedSecretContent(
  token: ValidToken,
  credential: { username: string; password: string; expiresAt: Date },
  nowMs: number,
): { data: Record<string, string>; annotations: Record<string, string> } {
  const auth = Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64');
  const doc = {
    auths: { [token.registry]: { username: credential.username, password: credential.password, auth } },
  };
  return {
    data: { [DOCKER_CONFIG_JSON_KEY]: Buffer.from(JSON.stringify(doc), 'utf8').toString('base64') },
    annotations: {
      [EXPIRES_AT_ANNOTATION]: rfc3339(credential.expiresAt),
      [REFRESHED_AT_ANNOTATION]: rfc3339(new Date(nowMs)),
      [MINTED_FOR_ANNOTATION]: token.mintedFor,
    },
  };
}

/** Retry delay after `failures` consecutive failed mints: 5 s doubling, at most 5 min. */
export function mintRetryDelayMs(failures: number): number {
  return Math.min(5 * 60_000, 5_000 * 2 ** Math.max(0, Math.min(failures - 1, 10)));
}

/** What the metrics say about all RegistryTokens: how many hold a current credential, and the soonest expiry. */
export interface RegistryTokenTally {
  ready: number;
  notReady: number;
  /** The earliest `status.expiresAt` (ms since the epoch) of any token; undefined when none has one. */
  earliestExpiryMs: number | undefined;
}

/** Counts from the tokens' statuses (as written): ready means the last reconcile succeeded. */
export function tallyRegistryTokens(
  statuses: ReadonlyArray<
    | { conditions?: ReadonlyArray<{ type?: string; status?: string }> | null; expiresAt?: string | null }
    | undefined
  >,
): RegistryTokenTally {
  const tally: RegistryTokenTally = { ready: 0, notReady: 0, earliestExpiryMs: undefined };
  for (const status of statuses) {
    const ready = status?.conditions?.some((c) => c.type === 'ReconcileSucceeded' && c.status === 'True');
    if (ready) tally.ready++;
    else tally.notReady++;
    const expiresMs = status?.expiresAt ? Date.parse(status.expiresAt) : NaN;
    if (
      !Number.isNaN(expiresMs) &&
      (tally.earliestExpiryMs === undefined || expiresMs < tally.earliestExpiryMs)
    )
      tally.earliestExpiryMs = expiresMs;
  }
  return tally;
}
