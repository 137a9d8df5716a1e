// Choosing the credential of a `.dockerconfigjson` for an image reference.
//
// A key is read as kubelet's credential keyring reads it (a scheme is added
// when missing; a trailing `/v1/` or `/v2/` is dropped), then matched:
//   - ports are compared as written: `host` never matches `host:443`;
//   - the hosts have the same number of labels and each label of the key
//     is a glob (`*` = any run of characters within that one label)
//     matching the image's label, case-insensitively, in linear time;
//   - keys beyond the caps of registryKeyProblem (length, `*` per label)
//     never match;
//   - the key's path, if any, is a prefix of the repository on `/`
//     boundaries (`team` matches `team/app`, not `teamwork/app`);
//   - Docker Hub images (registry `index.docker.io`) also match keys naming
//     `docker.io` or `registry-1.docker.io` (upstream: only index.docker.io).
// The most specific matching key wins: longer path first, then a host with
// fewer wildcards, then a key naming the registry exactly over an alias,
// then key order. No match means anonymous access.
//
// Nothing here puts a credential value into a message: problems name keys
// (through displayRegistryKey, which hides user info) and fields only.

import type { DockerConfigEntry, DockerConfigRegistry } from './dockerconfig.js';
import { compareKeys } from './dockerconfig.js';
import { DOCKER_HUB_REGISTRY, normalizeRegistry, splitHostPort, type ImageRef } from './image-ref.js';
import {
  collapseWildcards,
  displayRegistryKey,
  globLabelMatches,
  registryKeyPartsProblem,
  splitRegistryKey,
} from './registry-key.js';

export type RegistryCredential =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token, exchanged at the token realm (distribution token spec). */
  | { kind: 'identityToken'; token: string }
  /** A bearer token sent to the registry as is. */
  | { kind: 'registryToken'; token: string };

export const ANONYMOUS: RegistryCredential = Object.freeze({ kind: 'anonymous' });

export interface RegistryKey {
  /** The key as written. */
  key: string;
  /** Lower-cased host; a Docker Hub alias is kept as written here (see `registry`). */
  host: string;
  port?: string;
  /** Repository path prefix without leading or trailing slashes; '' for none. */
  path: string;
  /** `host[:port]` with Docker Hub aliases mapped to index.docker.io. */
  registry: string;
  wildcards: number;
}

export interface CredentialSelection {
  /** The matching key the credential came from; undefined when anonymous. */
  key?: string;
  credential: RegistryCredential;
  /** Matching keys passed over because their entry held no usable credential. */
  problems: string[];
}

/**
 * Parses a `.dockerconfigjson` key; undefined when it names no usable host or
 * exceeds the caps of registryKeyProblem (parseDockerConfigJson already skips
 * such keys; this keeps every other caller just as safe).
 */
export function parseRegistryKey(key: string): RegistryKey | undefined {
  const parts = splitRegistryKey(key);
  if (registryKeyPartsProblem(parts) !== undefined) return undefined;
  const { authority, path } = parts;
  const hostPort = splitHostPort(authority);
  if (!hostPort || hostPort.host === '') return undefined;
  const host = collapseWildcards(hostPort.host.toLowerCase());
  if (hostPort.port !== undefined && !/^[0-9]+$/.test(hostPort.port)) return undefined;
  const registry = normalizeRegistry(hostPort.port === undefined ? host : `${host}:${hostPort.port}`);
  let wildcards = 0;
  for (const character of host) if (character === '*') wildcards++;
  const parsed: RegistryKey = { key, host, path, registry, wildcards };
  if (hostPort.port !== undefined) parsed.port = hostPort.port;
  return parsed;
}

function hostMatches(key: RegistryKey, image: ImageRef): boolean {
  const imageParts = splitHostPort(image.registry);
  if (!imageParts) return false;
  if (key.port !== imageParts.port) return false;
  if (image.registry === DOCKER_HUB_REGISTRY && key.registry === DOCKER_HUB_REGISTRY) return true;
  const imageHost = imageParts.host.toLowerCase();
  if (imageHost.startsWith('[') || key.host.startsWith('[')) return imageHost === key.host;
  const globLabels = key.host.split('.');
  const labels = imageHost.split('.');
  if (globLabels.length !== labels.length) return false;
  return globLabels.every((glob, i) => globLabelMatches(glob, labels[i]!));
}

function pathMatches(key: RegistryKey, repository: string): boolean {
  return key.path === '' || repository === key.path || repository.startsWith(`${key.path}/`);
}

export function keyMatchesImage(key: RegistryKey, image: ImageRef): boolean {
  return hostMatches(key, image) && pathMatches(key, image.repository);
}

/** Negative when `a` is more specific than `b`. */
function compareSpecificity(a: RegistryKey, b: RegistryKey, image: ImageRef): number {
  const segments = (k: RegistryKey) => (k.path === '' ? 0 : k.path.split('/').length);
  const bySegments = segments(b) - segments(a);
  if (bySegments !== 0) return bySegments;
  if (a.wildcards !== b.wildcards) return a.wildcards - b.wildcards;
  const exact = (k: RegistryKey) => (k.host === image.registry.replace(/:[0-9]+$/, '') ? 0 : 1);
  const byExact = exact(a) - exact(b);
  if (byExact !== 0) return byExact;
  return compareKeys(a.key, b.key);
}

/** The entries whose key matches the image, most specific first. */
export function matchingRegistries(
  registries: readonly DockerConfigRegistry[],
  image: ImageRef,
): DockerConfigRegistry[] {
  const matches: Array<{ parsed: RegistryKey; registry: DockerConfigRegistry }> = [];
  for (const registry of registries) {
    const parsed = parseRegistryKey(registry.registry);
    if (parsed && keyMatchesImage(parsed, image)) matches.push({ parsed, registry });
  }
  matches.sort((a, b) => compareSpecificity(a.parsed, b.parsed, image));
  return matches.map((m) => m.registry);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes `auth` = base64(`user:pass`); undefined when it is not that. */
export function decodeAuthField(auth: string): { username: string; password: string } | undefined {
  if (!BASE64.test(auth)) return undefined;
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * The credential an entry carries. Precedence: registrytoken, identitytoken,
 * then `auth` (which wins over username/password, as in docker and kubelet),
 * then username/password. Returns a reason (no value) when none is usable.
 */
export function credentialFromEntry(entry: DockerConfigEntry): RegistryCredential | { problem: string } {
  if (entry.registrytoken) return { kind: 'registryToken', token: entry.registrytoken };
  if (entry.identitytoken) return { kind: 'identityToken', token: entry.identitytoken };
  const fromAuth = entry.auth === undefined ? undefined : decodeAuthField(entry.auth);
  const basic =
    fromAuth ??
    (entry.username !== undefined || entry.password !== undefined
      ? { username: entry.username ?? '', password: entry.password ?? '' }
      : undefined);
  if (!basic) {
    return {
      problem:
        entry.auth !== undefined
          ? 'auth is not base64 of "username:password"'
          : 'no credential (none of username, password, auth, identitytoken, registrytoken)',
    };
  }
  if (basic.username === '' && basic.password === '') return ANONYMOUS;
  return { kind: 'basic', username: basic.username, password: basic.password };
}

/** Picks the credential for an image: the most specific matching key with a usable entry, else anonymous. */
export function selectCredential(
  registries: readonly DockerConfigRegistry[],
  image: ImageRef,
): CredentialSelection {
  const problems: string[] = [];
  for (const { registry, entry } of matchingRegistries(registries, image)) {
    const credential = credentialFromEntry(entry);
    if ('problem' in credential) {
      problems.push(`auths["${displayRegistryKey(registry)}"]: ${credential.problem}`);
      continue;
    }
    return { key: registry, credential, problems };
  }
  return { credential: ANONYMOUS, problems };
}
