// The cloud settings of the operator configuration Secret and of
// --iaas-keychains. Pure: the caller passes the Secret's decoded text values.
//
//   iaasKeychains           comma list of providers whose keychain fetches may use:
//                           ecr, gcr (alias gke), acr (alias aks); kapp-controller's
//                           IMGPKG_ACTIVE_KEYCHAINS names (gke, aks, ecr) are accepted.
//                           When the key is present it replaces --iaas-keychains
//                           (a blank value turns keychains off); absent, the flag applies.
//   iaasKeychainHosts       comma list of provider=host[:port]: hosts a provider serves
//                           beyond its built-in patterns (repeat a provider for several)
//   iaasKeychainNamespaces  comma list of namespaces whose fetches may use the keychains
//                           (absent or blank: every namespace, as upstream)
//   registryTokenNamespaces comma list of namespaces whose RegistryTokens may mint with
//                           the operator's own identity (absent or blank: the operator's
//                           namespace only)
// Problems name the key and the offending entry (never a whole value: these
// keys hold no secret, but stay short).

import { CLOUD_PROVIDER_NAMES, type CloudProviderName } from './types.js';

export const KEYCHAIN_CONFIG_KEYS = [
  'iaasKeychains',
  'iaasKeychainHosts',
  'iaasKeychainNamespaces',
  'registryTokenNamespaces',
] as const;
export type KeychainConfigKey = (typeof KEYCHAIN_CONFIG_KEYS)[number];

/** Names accepted in iaasKeychains / --iaas-keychains, ours and kapp-controller's. */
export const KEYCHAIN_ALIASES: Readonly<Record<string, CloudProviderName>> = Object.freeze({
  ecr: 'ecr',
  gcr: 'gcr',
  gke: 'gcr',
  acr: 'acr',
  aks: 'acr',
});

/** Bounds on what the config may list (it is the cluster admin's, but stays cheap to match). */
export const MAX_LIST_ENTRIES = 1000;
const MAX_HOST_CHARS = 255;
const MAX_NAMESPACE_CHARS = 63;

export interface KeychainSettings {
  /** Providers fetches may take a credential from (empty: keychains off). */
  keychains: ReadonlySet<CloudProviderName>;
  /** Where `keychains` came from, for log lines and messages. */
  keychainsFrom: 'config' | 'flag' | 'default';
  /** Extra hosts per provider (lower-case, without :443). */
  extraHosts: Readonly<Record<CloudProviderName, readonly string[]>>;
  /** Namespaces whose fetches may use the keychains; undefined: all. */
  keychainNamespaces?: ReadonlySet<string>;
  /** Namespaces whose RegistryTokens may use the operator's identity. */
  registryTokenNamespaces: ReadonlySet<string>;
  problems: string[];
}

export type ParsedList = { ok: true; names: CloudProviderName[] } | { ok: false; error: string };

function entries(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A keychain list (`gke,ecr`) as iaasKeychains and --iaas-keychains take it. */
export function parseKeychainList(text: string): ParsedList {
  const names = new Set<CloudProviderName>();
  const list = entries(text);
  if (list.length > MAX_LIST_ENTRIES) return { ok: false, error: `more than ${MAX_LIST_ENTRIES} entries` };
  for (const entry of list) {
    const name = KEYCHAIN_ALIASES[entry.toLowerCase()];
    if (name === undefined) {
      return {
        ok: false,
        error: `unknown keychain ${JSON.stringify(entry.slice(0, 64))}; known: ecr, gcr (or gke), acr (or aks)`,
      };
    }
    names.add(name);
  }
  return { ok: true, names: [...names].sort() };
}

// A DNS name or IPv4 address, then an optional port: linear, no nested quantifiers.
const HOST = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;
const PORT = /^[0-9]{1,5}$/;

/** `host[:port]` lower-cased and without `:443`, as servesHost takes it; undefined when malformed. */
export function normalizeHost(text: string): string | undefined {
  const value = text.trim().toLowerCase();
  if (value === '' || value.length > MAX_HOST_CHARS) return undefined;
  const colon = value.lastIndexOf(':');
  const host = colon === -1 ? value : value.slice(0, colon);
  const port = colon === -1 ? undefined : value.slice(colon + 1);
  if (!HOST.test(host) || host.includes('..')) return undefined;
  if (port !== undefined) {
    if (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535) return undefined;
    if (Number(port) === 443) return host;
    return `${host}:${Number(port)}`;
  }
  return host;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function parseNamespaces(key: KeychainConfigKey, text: string, problems: string[]): Set<string> | undefined {
  const list = entries(text);
  if (list.length === 0) return undefined;
  if (list.length > MAX_LIST_ENTRIES) {
    problems.push(`${key}: more than ${MAX_LIST_ENTRIES} entries`);
    return new Set();
  }
  const names = new Set<string>();
  for (const entry of list) {
    if (entry.length > MAX_NAMESPACE_CHARS || !NAMESPACE.test(entry)) {
      problems.push(`${key}: ${JSON.stringify(entry.slice(0, 64))} is not a namespace name`);
      continue;
    }
    names.add(entry);
  }
  return names;
}

function parseHosts(text: string, problems: string[]): Record<CloudProviderName, string[]> {
  const hosts: Record<CloudProviderName, string[]> = { ecr: [], gcr: [], acr: [] };
  const list = entries(text);
  if (list.length > MAX_LIST_ENTRIES) {
    problems.push(`iaasKeychainHosts: more than ${MAX_LIST_ENTRIES} entries`);
    return hosts;
  }
  for (const entry of list) {
    const eq = entry.indexOf('=');
    const shown = JSON.stringify(entry.slice(0, 80));
    const provider = eq === -1 ? undefined : KEYCHAIN_ALIASES[entry.slice(0, eq).trim().toLowerCase()];
    if (provider === undefined) {
      problems.push(
        `iaasKeychainHosts: ${shown} must be provider=host[:port] with provider ecr, gcr (or gke), acr (or aks)`,
      );
      continue;
    }
    const host = normalizeHost(entry.slice(eq + 1));
    if (host === undefined) {
      problems.push(`iaasKeychainHosts: ${shown} does not name a host[:port]`);
      continue;
    }
    if (!hosts[provider].includes(host)) hosts[provider].push(host);
  }
  return hosts;
}

export interface KeychainSettingsInput {
  /** Decoded text of each key present in the config Secret. */
  values: Partial<Record<KeychainConfigKey, string>>;
  /** --iaas-keychains, when given. */
  flag?: readonly CloudProviderName[];
  /** The operator's namespace (default of registryTokenNamespaces). */
  operatorNamespace: string;
}

/**
 * The cloud settings. A Secret key that is present wins over the flag, so
 * keychains can be turned on or off without a restart; an invalid entry is a
 * problem (and, for iaasKeychains, turns keychains off rather than guessing).
 */
export function keychainSettings(input: KeychainSettingsInput): KeychainSettings {
  const problems: string[] = [];
  const { values } = input;
  let keychains = new Set<CloudProviderName>();
  let keychainsFrom: KeychainSettings['keychainsFrom'] = 'default';
  if (values.iaasKeychains !== undefined) {
    keychainsFrom = 'config';
    const parsed = parseKeychainList(values.iaasKeychains);
    if (parsed.ok) keychains = new Set(parsed.names);
    else problems.push(`iaasKeychains: ${parsed.error}`);
  } else if (input.flag !== undefined) {
    keychainsFrom = 'flag';
    keychains = new Set(input.flag);
  }
  const extraHosts = parseHosts(values.iaasKeychainHosts ?? '', problems);
  const keychainNamespaces = parseNamespaces(
    'iaasKeychainNamespaces',
    values.iaasKeychainNamespaces ?? '',
    problems,
  );
  const registryTokenNamespaces =
    parseNamespaces('registryTokenNamespaces', values.registryTokenNamespaces ?? '', problems) ??
    new Set([input.operatorNamespace]);
  return {
    keychains,
    keychainsFrom,
    extraHosts,
    ...(keychainNamespaces ? { keychainNamespaces } : {}),
    registryTokenNamespaces,
    problems,
  };
}

/** Whether fetches in `namespace` may use the `provider` keychain, and if not, why (for messages). */
export function keychainAllowed(
  settings: KeychainSettings,
  provider: CloudProviderName,
  namespace: string,
): { ok: true } | { ok: false; reason: string } {
  if (!settings.keychains.has(provider)) {
    return {
      ok: false,
      reason: `the ${provider} keychain is not enabled (iaasKeychains / --iaas-keychains)`,
    };
  }
  if (settings.keychainNamespaces && !settings.keychainNamespaces.has(namespace)) {
    return { ok: false, reason: `namespace ${namespace} is not listed in iaasKeychainNamespaces` };
  }
  return { ok: true };
}

export const isCloudProviderName = (name: string): name is CloudProviderName =>
  (CLOUD_PROVIDER_NAMES as readonly string[]).includes(name);
