// What a placeholder Secret should hold: the merge of every matching
// dockerconfigjson export, in upstream's precedence order, plus its status
// annotation. Pure: the controller gathers sources and writes the result.

import {
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
  EXCLUDED_FROM_WILDCARD_ANNOTATION,
  IMAGE_PULL_SECRET_ANNOTATION,
  STATUS_ANNOTATION,
  WEIGHT_ANNOTATION,
} from './annotations.js';
import { truncateMessage } from '../runtime/conditions.js';
import { exportWeight } from './export-rules.js';
import { matchExportToNamespace, type MatchKind } from './namespace-match.js';
import { decodeSecretValue, encodeSecretValue, sameSecretData } from './secret-data.js';
import { refString, type NamespaceInput, type SecretExportInput, type SecretInput } from './types.js';
import {
  compareKeys,
  normalizeRegistryKey,
  parseDockerConfigJson,
  serializeDockerConfigJson,
  type DockerConfigRegistry,
} from '../registry/dockerconfig.js';
import { displayRegistryKey } from '../registry/registry-key.js';

export {
  EXCLUDED_FROM_WILDCARD_ANNOTATION,
  IMAGE_PULL_SECRET_ANNOTATION,
  STATUS_ANNOTATION,
  WEIGHT_ANNOTATION,
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
};

/** Upstream's exact annotation for a placeholder that is not of type kubernetes.io/dockerconfigjson. */
export const WRONG_TYPE_STATUS =
  '{"conditions":[{"type":"ReconcileFailed","status":"True","message":"Expected secret to have type=corev1.SecretTypeDockerConfigJson, but did not"}]}';

export const EMPTY_DOCKER_CONFIG_JSON = '{"auths":{}}';

/** One export that reaches the placeholder's namespace, with its Secret. */
export interface PlaceholderSource {
  /** The SecretExport, which has the name and namespace of its Secret. */
  ref: { namespace: string; name: string };
  weight: number;
  matchKind: MatchKind;
  secretType: string;
  /** The decoded `.dockerconfigjson` text; undefined when the key is missing. */
  dockerconfigjson: string | undefined;
}

export interface SkippedSource {
  /** `ns/name` of the source. */
  source: string;
  /** Set when only one registry of the source was left out; as displayRegistryKey shows it. */
  registry?: string;
  reason: string;
}

export interface RegistryConflict {
  /** The normalized registry several sources gave credentials for, as displayRegistryKey shows it. */
  registry: string;
  winner: string;
  /** The other sources, `ns/name` ascending. */
  losers: string[];
}

export interface PlaceholderResult {
  dockerconfigjson: string;
  /** `ns/name` of every source that parsed, ascending (upstream lists every merged Secret). */
  secretNames: string[];
  skipped: SkippedSource[];
  conflicts: RegistryConflict[];
  statusAnnotation: string;
}

const SELF_REFERENCE_REASON = 'is this placeholder itself; merging it would keep revoked credentials forever';

export function isPlaceholder(secret: { annotations?: Record<string, string> }): boolean {
  return Object.hasOwn(secret.annotations ?? {}, IMAGE_PULL_SECRET_ANNOTATION);
}

/**
 * Orders sources least preferred first, so merging in this order lets the
 * most preferred write last: lower weight; another namespace before the
 * placeholder's own; wildcard/selector before an explicit name; `ns/name`
 * ascending.
 */
export function leastPreferredFirst(
  placeholderNamespace: string,
): (a: PlaceholderSource, b: PlaceholderSource) => number {
  const key = (source: PlaceholderSource) => ({
    weight: Number.isNaN(source.weight) ? 0 : source.weight,
    own: source.ref.namespace === placeholderNamespace ? 1 : 0,
    explicit: source.matchKind === 'explicit' ? 1 : 0,
    ref: refString(source.ref),
  });
  return (a: PlaceholderSource, b: PlaceholderSource): number => {
    const ka = key(a);
    const kb = key(b);
    // Not subtraction: Infinity - Infinity is NaN, and "inf" is a weight Go accepts.
    if (ka.weight !== kb.weight) return ka.weight < kb.weight ? -1 : 1;
    return ka.own - kb.own || ka.explicit - kb.explicit || compareKeys(ka.ref, kb.ref);
  };
}

interface RegistrySlot {
  source: string;
  /** All keys the winning source gave for this registry; the output keeps the winner's own keys. */
  registries: DockerConfigRegistry[];
  contenders: string[];
}

/**
 * Merges the sources for a placeholder in `placeholderNamespace`. Sources of
 * another Secret type are ignored, as upstream ignores them. A source that
 * does not parse is skipped and reported while the others still merge.
 */
export function computePlaceholder(
  placeholderNamespace: string,
  sources: readonly PlaceholderSource[],
  options: { placeholderName?: string } = {},
): PlaceholderResult {
  const ordered = sources
    .filter((source) => source.secretType === DOCKER_CONFIG_JSON_TYPE)
    .sort(leastPreferredFirst(placeholderNamespace));

  const slots = new Map<string, RegistrySlot>();
  const secretNames: string[] = [];
  const skipped: SkippedSource[] = [];
  for (const source of ordered) {
    const name = refString(source.ref);
    if (source.ref.namespace === placeholderNamespace && source.ref.name === options.placeholderName) {
      skipped.push({ source: name, reason: SELF_REFERENCE_REASON });
      continue;
    }
    if (source.dockerconfigjson === undefined) {
      skipped.push({ source: name, reason: `missing ${DOCKER_CONFIG_JSON_KEY}` });
      continue;
    }
    const parsed = parseDockerConfigJson(source.dockerconfigjson);
    if (!parsed.ok) {
      skipped.push({ source: name, reason: parsed.error });
      continue;
    }
    secretNames.push(name);
    // The annotation and Events reach every namespace the export does: never show a key's user info.
    for (const entry of parsed.skipped)
      skipped.push({ source: name, registry: displayRegistryKey(entry.registry), reason: entry.reason });
    for (const [registry, registries] of groupByRegistry(parsed.registries)) {
      const contenders = slots.get(registry)?.contenders ?? [];
      contenders.push(name);
      // Last writer wins per registry, as upstream; the earlier writers are the conflict's losers.
      slots.set(registry, { source: name, registries, contenders });
    }
  }

  const conflicts = [...slots.entries()]
    .filter(([, slot]) => slot.contenders.length > 1)
    .sort(([a], [b]) => compareKeys(a, b))
    .map(([registry, slot]) => ({
      registry: displayRegistryKey(registry),
      winner: slot.source,
      losers: slot.contenders.filter((contender) => contender !== slot.source).sort(compareKeys),
    }));
  skipped.sort((a, b) => compareKeys(a.source, b.source) || compareKeys(a.registry ?? '', b.registry ?? ''));
  secretNames.sort(compareKeys);

  const merged = [...slots.values()].flatMap((slot) => slot.registries);
  return {
    dockerconfigjson: serializeDockerConfigJson(merged),
    secretNames,
    skipped,
    conflicts,
    statusAnnotation: placeholderStatusAnnotation({ secretNames, skipped, conflicts }),
  };
}

/** Keys that differ only by scheme, `/v1/` or docker.io alias are one registry. */
function groupByRegistry(registries: readonly DockerConfigRegistry[]): Map<string, DockerConfigRegistry[]> {
  const groups = new Map<string, DockerConfigRegistry[]>();
  for (const registry of registries) {
    const key = normalizeRegistryKey(registry.registry);
    const group = groups.get(key);
    if (group) group.push(registry);
    else groups.set(key, [registry]);
  }
  return groups;
}

/**
 * Most characters of the status annotation. All annotations of an object
 * share 256 KiB; a longer annotation would make the whole write fail.
 */
export const MAX_STATUS_ANNOTATION_CHARS = 32 * 1024;

/**
 * Upstream's success annotation, byte for byte when nothing was skipped and
 * nothing conflicted; the Beyond fields follow only when non-empty. When the
 * lists would not fit in MAX_STATUS_ANNOTATION_CHARS, only their first entries
 * are listed and `notShown` counts the rest per field.
 */
export function placeholderStatusAnnotation(status: {
  secretNames: readonly string[];
  skipped: readonly SkippedSource[];
  conflicts: readonly RegistryConflict[];
}): string {
  const lists = {
    secretNames: status.secretNames,
    skipped: status.skipped,
    conflicts: status.conflicts,
  } as const;
  const longest = Math.max(...Object.values(lists).map((list) => list.length));
  // Halve the entries listed until it fits; at 0 only the counts remain, which always fits.
  for (let shown = longest; ; shown = Math.floor(shown / 2)) {
    const annotation: Record<string, unknown> = {
      conditions: [{ type: 'ReconcileSucceeded', status: 'True' }],
    };
    const notShown: Record<string, number> = {};
    for (const [field, list] of Object.entries(lists)) {
      if (list.length === 0) continue;
      if (shown > 0) annotation[field] = list.slice(0, shown);
      if (list.length > shown) notShown[field] = list.length - shown;
    }
    if (Object.keys(notShown).length > 0) annotation['notShown'] = notShown;
    const text = JSON.stringify(annotation);
    if (text.length <= MAX_STATUS_ANNOTATION_CHARS || shown === 0) return text;
  }
}

/** Kubernetes' limit on the bytes of a Secret's data (corev1.MaxSecretSize). */
export const MAX_SECRET_DATA_BYTES = 1024 * 1024;

/**
 * Whether the API server refused a write for its size: 413 Request Entity Too
 * Large, 422 Invalid with a "Too long" field error (Secret data over 1 MiB,
 * annotations over 256 KiB), or etcd's request size limit.
 */
export function isTooLargeRejection(code: number, message: string): boolean {
  if (code === 413) return true;
  const text = message.toLowerCase();
  if (code === 422) return text.includes('too long') || text.includes('must have at most');
  return text.includes('request is too large');
}

/** A placeholder whose content cannot be written: ReconcileFailed with this message. */
export function placeholderFailureAnnotation(message: string): string {
  return JSON.stringify({
    conditions: [{ type: 'ReconcileFailed', status: 'True', message: truncateMessage(message, 4096) }],
  });
}

export function placeholderTooLargeMessage(namespace: string, bytes: number, sources: number): string {
  return (
    `merged credentials are ${bytes} bytes, over the 1 MiB Secret limit (${MAX_SECRET_DATA_BYTES} bytes), ` +
    `from ${sources} exported Secret${sources === 1 ? '' : 's'}; the placeholder keeps its previous data ` +
    `until the exports reaching namespace ${namespace} give fewer credentials`
  );
}

export function placeholderRejectedMessage(namespace: string, bytes: number, serverMessage: string): string {
  return (
    `the API server rejected the merged credentials (${bytes} bytes) as too large: ` +
    `${truncateMessage(serverMessage, 1024)}; the placeholder keeps its previous data until the exports ` +
    `reaching namespace ${namespace} change`
  );
}

/**
 * The sources for a placeholder: every export reaching its namespace whose
 * Secret exists. Type filtering is left to computePlaceholder.
 */
export function collectPlaceholderSources(
  namespace: NamespaceInput,
  exports: readonly SecretExportInput[],
  secretOf: (ref: { namespace: string; name: string }) => SecretInput | undefined,
): PlaceholderSource[] {
  const sources: PlaceholderSource[] = [];
  for (const exportObj of exports) {
    const matchKind = matchExportToNamespace(exportObj, namespace);
    if (matchKind === undefined) continue;
    const secret = secretOf({ namespace: exportObj.namespace, name: exportObj.name });
    if (secret === undefined) continue;
    const encoded = secret.data[DOCKER_CONFIG_JSON_KEY];
    sources.push({
      ref: { namespace: exportObj.namespace, name: exportObj.name },
      weight: exportWeight(exportObj.annotations),
      matchKind,
      secretType: secret.type,
      dockerconfigjson: encoded === undefined ? undefined : decodeSecretValue(encoded),
    });
  }
  return sources;
}

export interface PlaceholderSecret {
  namespace: string;
  name: string;
  type: string;
  data?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface PlaceholderPlan {
  /** Undefined for a placeholder of the wrong type, whose data is left alone. */
  result: PlaceholderResult | undefined;
  /** Set when the merged data cannot be written; `write` then only updates the status annotation. */
  failure?: string;
  /** What to write, or undefined when the Secret already holds it (no update churn). */
  write: { data: Record<string, string> | undefined; annotations: Record<string, string> } | undefined;
}

/** Decides the placeholder's next data (base64) and annotations from its sources. */
export function planPlaceholder(
  placeholder: PlaceholderSecret,
  sources: readonly PlaceholderSource[],
): PlaceholderPlan {
  const annotations = placeholder.annotations ?? {};
  if (placeholder.type !== DOCKER_CONFIG_JSON_TYPE) {
    if (annotations[STATUS_ANNOTATION] === WRONG_TYPE_STATUS) return { result: undefined, write: undefined };
    return {
      result: undefined,
      write: { data: undefined, annotations: { ...annotations, [STATUS_ANNOTATION]: WRONG_TYPE_STATUS } },
    };
  }
  const result = computePlaceholder(placeholder.namespace, sources, { placeholderName: placeholder.name });
  const bytes = Buffer.byteLength(result.dockerconfigjson, 'utf8');
  if (bytes > MAX_SECRET_DATA_BYTES) {
    // The API server would refuse it: keep the data, say why in the status.
    const failure = placeholderTooLargeMessage(placeholder.namespace, bytes, result.secretNames.length);
    return planFailure(placeholder, result, failure);
  }
  const data = { [DOCKER_CONFIG_JSON_KEY]: encodeSecretValue(result.dockerconfigjson) };
  const unchanged =
    annotations[STATUS_ANNOTATION] === result.statusAnnotation &&
    sameSecretData(placeholder.data ?? {}, data);
  return {
    result,
    write: unchanged
      ? undefined
      : { data, annotations: { ...annotations, [STATUS_ANNOTATION]: result.statusAnnotation } },
  };
}

/** Only the status annotation changes (and only when it differs); the data is left as it was. */
export function planFailure(
  placeholder: PlaceholderSecret,
  result: PlaceholderResult | undefined,
  failure: string,
): PlaceholderPlan {
  const annotations = placeholder.annotations ?? {};
  const status = placeholderFailureAnnotation(failure);
  return {
    result,
    failure,
    write:
      annotations[STATUS_ANNOTATION] === status
        ? undefined
        : { data: undefined, annotations: { ...annotations, [STATUS_ANNOTATION]: status } },
  };
}
