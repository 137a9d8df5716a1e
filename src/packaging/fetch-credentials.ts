// The registry credentials a fetch Secret gives, and the hint that says
// which credentials a rejected pull sent. Pure; nothing here puts a secret
// value into a message (they name Secrets, keys and registries only).

import { parseRegistryKey, selectCredential, type RegistryCredential } from '../registry/auth-match.js';
import {
  parseDockerConfigJson,
  type DockerConfigEntry,
  type DockerConfigRegistry,
  type SkippedRegistry,
} from '../registry/dockerconfig.js';
import { parseImageRef, type ImageRef } from '../registry/image-ref.js';
import { displayRegistryKey } from '../registry/registry-key.js';
import { DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE } from './fetch-secrets.js';

export const DOCKER_CFG_TYPE = 'kubernetes.io/dockercfg';
export const DOCKER_CFG_KEY = '.dockercfg';

export interface FetchSecretLike {
  type?: string;
  data?: Record<string, string>;
}

/** What the registry client takes: a `.dockerconfigjson`'s entries, or one credential for any registry. */
export interface FetchCredentials {
  auths?: DockerConfigRegistry[];
  credential?: RegistryCredential;
  /** The `hostname` a generic Secret scopes its credential to (then `auths` holds that one entry); only for messages. */
  scopedTo?: string;
  /** `auths` entries left out (no credential, key beyond the caps); only for messages, the client ignores it. */
  skipped?: SkippedRegistry[];
}

export type FetchCredentialsResult =
  { ok: true; credentials: FetchCredentials } | { ok: false; error: string };

function decoded(secret: FetchSecretLike, key: string): string | undefined {
  const value = secret.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function fromDockerConfig(text: string, what: string): FetchCredentialsResult {
  const parsed = parseDockerConfigJson(text);
  if (!parsed.ok) return { ok: false, error: `${what}: ${parsed.error}` };
  const credentials: FetchCredentials = { auths: parsed.registries };
  if (parsed.skipped.length > 0) credentials.skipped = parsed.skipped;
  return { ok: true, credentials };
}

/**
 * Credentials from a fetch Secret, as kapp-controller accepts them:
 * `kubernetes.io/dockerconfigjson` (one credential per `auths` key; `{}` or
 * `{"auths":{}}` is anonymous), the legacy `kubernetes.io/dockercfg`, or any
 * other type with keys `username`/`password`, `token` or `identity-token`,
 * optionally scoped by `hostname` (fromGenericSecret). `secretName` names
 * the Secret in messages.
 */
export function credentialsFromSecret(secret: FetchSecretLike, secretName: string): FetchCredentialsResult {
  const where = `Secret ${secretName}`;
  if (secret.type === DOCKER_CONFIG_JSON_TYPE) {
    const text = decoded(secret, DOCKER_CONFIG_JSON_KEY);
    if (text === undefined) return { ok: false, error: `${where} has no ${DOCKER_CONFIG_JSON_KEY} key` };
    return fromDockerConfig(text, `${where}, key ${DOCKER_CONFIG_JSON_KEY}`);
  }
  if (secret.type === DOCKER_CFG_TYPE) {
    const text = decoded(secret, DOCKER_CFG_KEY);
    if (text === undefined) return { ok: false, error: `${where} has no ${DOCKER_CFG_KEY} key` };
    let auths: unknown;
    try {
      auths = JSON.parse(text);
    } catch {
      return { ok: false, error: `${where}, key ${DOCKER_CFG_KEY}: value is not valid JSON` };
    }
    return fromDockerConfig(JSON.stringify({ auths }), `${where}, key ${DOCKER_CFG_KEY}`);
  }
  return fromGenericSecret(secret, where);
}

/** The keys of a fetch Secret of any other type (kapp-controller's fetch docs format). */
export const GENERIC_SECRET_KEYS = Object.freeze({
  username: 'username',
  password: 'password',
  token: 'token',
  identityToken: 'identity-token',
  hostname: 'hostname',
});

/**
 * `token` (a bearer token sent as is), `identity-token` (an OAuth2 refresh
 * token exchanged at the registry's token realm) or `username`/`password`,
 * in that order of precedence. With `hostname` the credential becomes a
 * single `auths` entry, so it reaches only the registry that key matches
 * (host and port equal, as for a `.dockerconfigjson` key); without it, the
 * credential goes to whatever registry the stage names, as upstream does.
 */
function fromGenericSecret(secret: FetchSecretLike, where: string): FetchCredentialsResult {
  const keys = GENERIC_SECRET_KEYS;
  const filled = (key: string): string | undefined => {
    const value = decoded(secret, key);
    return value === undefined || value === '' ? undefined : value;
  };
  const token = filled(keys.token);
  const identityToken = filled(keys.identityToken);
  const username = decoded(secret, keys.username);
  const password = decoded(secret, keys.password);
  let credential: RegistryCredential | undefined;
  let entry: DockerConfigEntry | undefined;
  if (token !== undefined) {
    credential = { kind: 'registryToken', token };
    entry = { registrytoken: token };
  } else if (identityToken !== undefined) {
    credential = { kind: 'identityToken', token: identityToken };
    entry = { identitytoken: identityToken };
  } else if (username !== undefined || password !== undefined) {
    credential = { kind: 'basic', username: username ?? '', password: password ?? '' };
    entry = { username: username ?? '', password: password ?? '' };
  }
  const hostname = decoded(secret, keys.hostname)?.trim();
  if (hostname === undefined || hostname === '') {
    return { ok: true, credentials: credential ? { credential } : {} };
  }
  const key = parseRegistryKey(hostname);
  if (key === undefined) {
    return {
      ok: false,
      error: `${where}, key ${keys.hostname}: ${JSON.stringify(displayRegistryKey(hostname))} is not a registry host (host or host:port)`,
    };
  }
  // No credential: anonymous everywhere, whatever the hostname says.
  if (!entry) return { ok: true, credentials: {} };
  return { ok: true, credentials: { auths: [{ registry: hostname, entry }], scopedTo: hostname } };
}

/**
 * Whether the fetch Secret's credentials cover the image's registry: a
 * generic Secret without hostname covers every registry, a `.dockerconfigjson`
 * only through a matching key. When they do not, a cloud keychain may.
 */
export function credentialsCoverRegistry(credentials: FetchCredentials, ref: ImageRef): boolean {
  if (credentials.credential) return true;
  return selectCredential(credentials.auths ?? [], ref).key !== undefined;
}

/** The credentials with one more entry, for exactly `registry` (a keychain's credential). */
export function withRegistryCredential(
  credentials: FetchCredentials,
  registry: string,
  username: string,
  password: string,
): FetchCredentials {
  return {
    ...credentials,
    auths: [...(credentials.auths ?? []), { registry, entry: { username, password } }],
  };
}

const AUTH_CODES = new Set(['UNAUTHORIZED', 'DENIED']);

/**
 * For a pull the registry refused (UNAUTHORIZED, DENIED): which credentials
 * it sent, so that an empty placeholder or a wrong entry shows at a glance.
 * Empty for other errors.
 */
export function credentialHint(
  code: string,
  image: string,
  secretName: string | undefined,
  credentials: FetchCredentials,
): string {
  if (!AUTH_CODES.has(code)) return '';
  if (secretName === undefined) return ' (sent no credentials: the fetch names no secret)';
  if (credentials.credential) return ` (sent the credentials of Secret ${secretName})`;
  let registry = image;
  try {
    const ref = parseImageRef(image);
    registry = ref.registry;
    const { key } = selectCredential(credentials.auths ?? [], ref);
    const scopedTo = credentials.scopedTo;
    if (scopedTo !== undefined) {
      const shown = JSON.stringify(displayRegistryKey(scopedTo));
      return key !== undefined
        ? ` (sent the credentials of Secret ${secretName}, key hostname ${shown})`
        : ` (sent no credentials: Secret ${secretName} holds credentials only for hostname ${shown})`;
    }
    if (key !== undefined)
      return ` (sent the credentials of entry "${displayRegistryKey(key)}" of Secret ${secretName})`;
  } catch {
    // An unparsable reference fails earlier, with its own message.
  }
  return ` (sent no credentials: Secret ${secretName} has none for ${registry}${skippedHint(credentials.skipped)})`;
}

const MAX_SKIPPED_NAMED = 3;

/** The entries left out, which may be the ones meant for this registry. */
function skippedHint(skipped: readonly SkippedRegistry[] | undefined): string {
  if (!skipped || skipped.length === 0) return '';
  const named = skipped
    .slice(0, MAX_SKIPPED_NAMED)
    .map((s) => `"${displayRegistryKey(s.registry)}": ${s.reason}`)
    .join('; ');
  const more = skipped.length > MAX_SKIPPED_NAMED ? `; and ${skipped.length - MAX_SKIPPED_NAMED} more` : '';
  return `; skipped entries: ${named}${more}`;
}
