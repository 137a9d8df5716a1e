// Pure parsing, normalizing and serializing of `.dockerconfigjson` values.
// Nothing here ever puts a credential value into a message: errors and skip
// reasons name only field names and registry keys, the latter through
// displayRegistryKey (credentials written into a key stay hidden).

import { displayRegistryKey, registryKeyProblem } from './registry-key.js';

/** The credential fields kept from an `auths` entry (upstream keeps only the first three). */
export interface DockerConfigEntry {
  username?: string;
  password?: string;
  auth?: string;
  email?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigRegistry {
  /** The key exactly as written in the source; output keeps it. */
  registry: string;
  entry: DockerConfigEntry;
}

export interface SkippedRegistry {
  /** The key as written: show it only through displayRegistryKey. */
  registry: string;
  reason: string;
}

export type DockerConfigParseResult =
  { ok: true; registries: DockerConfigRegistry[]; skipped: SkippedRegistry[] } | { ok: false; error: string };

/** Serialization order of entry fields; fixed so equal content gives equal bytes. */
const ENTRY_FIELDS = ['username', 'password', 'auth', 'email', 'identitytoken', 'registrytoken'] as const;
const CREDENTIAL_FIELDS = ['username', 'password', 'auth', 'identitytoken', 'registrytoken'] as const;

export const NO_CREDENTIAL_REASON =
  'no credential (none of username, password, auth, identitytoken, registrytoken)';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Parses the text of a `.dockerconfigjson` value (already base64-decoded).
 * `{}` (the usual placeholder seed) is a valid config with no registries.
 */
export function parseDockerConfigJson(text: string): DockerConfigParseResult {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    // JSON.parse messages quote the input, which may hold credentials: say only what is wrong.
    return { ok: false, error: 'value is not valid JSON' };
  }
  if (!isPlainObject(document)) {
    return { ok: false, error: `expected a JSON object, got ${jsonTypeName(document)}` };
  }
  if (Object.keys(document).length === 0) return { ok: true, registries: [], skipped: [] };
  if (!Object.hasOwn(document, 'auths'))
    return { ok: false, error: 'expected an "auths" object, found none' };
  const auths = document['auths'];
  if (!isPlainObject(auths)) {
    return { ok: false, error: `expected "auths" to be an object, got ${jsonTypeName(auths)}` };
  }

  const registries: DockerConfigRegistry[] = [];
  const skipped: SkippedRegistry[] = [];
  for (const registry of Object.keys(auths).sort(compareKeys)) {
    // Checked first: a key beyond the caps is never read further, whatever its entry holds.
    const keyProblem = registryKeyProblem(registry);
    if (keyProblem !== undefined) {
      skipped.push({ registry, reason: keyProblem });
      continue;
    }
    const raw = auths[registry];
    if (!isPlainObject(raw)) {
      return {
        ok: false,
        error: `auths["${displayRegistryKey(registry)}"]: expected an object, got ${jsonTypeName(raw)}`,
      };
    }
    const entry: DockerConfigEntry = {};
    for (const field of ENTRY_FIELDS) {
      const value = raw[field];
      // null is read as absent, as Go's encoding/json does upstream.
      if (value === undefined || value === null) continue;
      if (typeof value !== 'string') {
        return {
          ok: false,
          error: `auths["${displayRegistryKey(registry)}"].${field}: expected a string, got ${jsonTypeName(value)}`,
        };
      }
      // Empty strings carry nothing; dropping them keeps the output minimal and stable.
      if (value !== '') entry[field] = value;
    }
    if (!CREDENTIAL_FIELDS.some((field) => entry[field] !== undefined)) {
      // Upstream passes such entries on and kubelet then fails with "Unsupported Auth config".
      skipped.push({ registry, reason: NO_CREDENTIAL_REASON });
      continue;
    }
    if (entry.auth === undefined && (entry.username !== undefined || entry.password !== undefined)) {
      // docker, podman and skopeo read only `auth`; kubelet reads either form.
      entry.auth = Buffer.from(`${entry.username ?? ''}:${entry.password ?? ''}`, 'utf8').toString('base64');
    }
    registries.push({ registry, entry: orderedEntry(entry) });
  }
  return { ok: true, registries, skipped };
}

function orderedEntry(entry: DockerConfigEntry): DockerConfigEntry {
  const ordered: DockerConfigEntry = {};
  for (const field of ENTRY_FIELDS) {
    const value = entry[field];
    if (value !== undefined) ordered[field] = value;
  }
  return ordered;
}

/** Code-unit order, as Go's sort.Strings gives for the ASCII keys registries use. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** docker.io and index.docker.io name the same registry; docker.io is the canonical form here. */
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io']);
const CANONICAL_DOCKER_HUB = 'docker.io';

/**
 * The registry a key points at, for conflict detection only (output keeps
 * original keys): scheme, user info and a trailing `/v1/` or `/v2/` dropped,
 * host and port lower-cased, docker.io ≡ index.docker.io, any path kept as
 * written.
 */
export function normalizeRegistryKey(key: string): string {
  let rest = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  rest = withoutTrailingSlashes(rest);
  if (rest.endsWith('/v1') || rest.endsWith('/v2')) rest = withoutTrailingSlashes(rest.slice(0, -3));
  const slash = rest.indexOf('/');
  let host = (slash === -1 ? rest : rest.slice(0, slash)).toLowerCase();
  // Kubelet matches `https://user:pass@r.io` as `r.io`: the same registry for conflicts too.
  host = host.slice(host.lastIndexOf('@') + 1);
  const path = slash === -1 ? '' : rest.slice(slash);
  return (DOCKER_HUB_ALIASES.has(host) ? CANONICAL_DOCKER_HUB : host) + path;
}

/** A loop, not `/\/+$/`: that regex is quadratic on a long run of slashes followed by anything else. */
function withoutTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text[end - 1] === '/') end--;
  return text.slice(0, end);
}

/**
 * `{"auths":{...}}` with registry keys sorted and entry fields in a fixed
 * order, built by hand so a key such as `__proto__` stays an ordinary key.
 */
export function serializeDockerConfigJson(registries: Iterable<DockerConfigRegistry>): string {
  const byKey = new Map<string, DockerConfigEntry>();
  for (const { registry, entry } of registries) byKey.set(registry, entry);
  const parts = [...byKey.keys()].sort(compareKeys).map((registry) => {
    const entry = byKey.get(registry) ?? {};
    const fields = ENTRY_FIELDS.flatMap((field) => {
      const value = entry[field];
      return value === undefined ? [] : [`${JSON.stringify(field)}:${JSON.stringify(value)}`];
    });
    return `${JSON.stringify(registry)}:{${fields.join(',')}}`;
  });
  return `{"auths":{${parts.join(',')}}}`;
}
