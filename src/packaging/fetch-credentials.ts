// The registry credentials a fetch Secret gives, and the hint that says
// which credentials a rejected pull sent. Pure; nothing here puts a secret
// value into a message (they name Secrets, keys and registries only).

import { selectCredential, type RegistryCredential } from '../registry/auth-match.js';
import { parseDockerConfigJson, type DockerConfigRegistry } from '../registry/dockerconfig.js';
import { parseImageRef } from '../registry/image-ref.js';
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
  return { ok: true, credentials: { auths: parsed.registries } };
}

/**
 * Credentials from a fetch Secret, as kapp-controller accepts them:
 * `kubernetes.io/dockerconfigjson` (one credential per `auths` key; `{}` or
 * `{"auths":{}}` is anonymous), the legacy `kubernetes.io/dockercfg`, or any
 * other type with keys `username`/`password` (or `token`) used for every
 * registry. `secretName` names the Secret in messages.
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
  const token = decoded(secret, 'token');
  if (token !== undefined && token !== '')
    return { ok: true, credentials: { credential: { kind: 'registryToken', token } } };
  const username = decoded(secret, 'username');
  const password = decoded(secret, 'password');
  if (username === undefined && password === undefined) return { ok: true, credentials: {} };
  return {
    ok: true,
    credentials: { credential: { kind: 'basic', username: username ?? '', password: password ?? '' } },
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
    if (key !== undefined) return ` (sent the credentials of entry "${key}" of Secret ${secretName})`;
  } catch {
    // An unparsable reference fails earlier, with its own message.
  }
  return ` (sent no credentials: Secret ${secretName} has none for ${registry})`;
}
