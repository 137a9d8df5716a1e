// What a placeholder Secret should hold: the merge of every matching
// dockerconfigjson export, in upstream's precedence order, plus its status
// annotation. Pure: the controller gathers sources and writes the result.
//
// One export to `*` reaches every placeholder of the cluster, so the same
// source is planned once per namespace. Decoding, parsing and merging are
// memoized (bounded LRU) so a large source costs its parse and merge once per
// change, not once per placeholder; results are frozen because they are shared.

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
  type DockerConfigParseResult,
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

/** Shared between placeholders with the same inputs, and frozen: never modify one. */
export interface PlaceholderResult {
  readonly dockerconfigjson: string;
  /** `ns/name` of every source that parsed, ascending (upstream lists every merged Secret). */
  readonly secretNames: readonly string[];
  readonly skipped: readonly Readonly<SkippedSource>[];
  readonly conflicts: readonly Readonly<RegistryConflict>[];
  readonly statusAnnotation: string;
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

/** One `auths` entry as serializeDockerConfigJson writes it: `"key":{...}`. */
interface SerializedRegistry {
  registry: string;
  json: string;
}

/**
 * A source text in the form merges read, built once per text: its
 * registries grouped by the registry they point at (normalizeRegistryKey),
 * each entry already serialized, and its skipped keys already made safe to
 * show. A merge then only picks winners and joins strings.
 */
type PreparedSource =
  | {
      ok: true;
      groups: ReadonlyMap<string, readonly SerializedRegistry[]>;
      skipped: readonly { registry: string; reason: string }[];
    }
  | { ok: false; error: string };

const EMPTY_AUTHS_PREFIX = '{"auths":{';
const EMPTY_AUTHS_SUFFIX = '}}';

/**
 * An LRU map bounded by entry count and by the characters its entries hold
 * (as estimated by the caller). An entry over the whole budget is not kept.
 */
class BoundedLru<K, V> {
  private readonly entries = new Map<K, { value: V; chars: number }>();
  private chars = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxChars: number,
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    // Map iteration follows insertion order: re-inserting marks it most recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V, chars: number): void {
    this.delete(key);
    if (chars > this.maxChars) return;
    this.entries.set(key, { value, chars });
    this.chars += chars;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxChars) break;
      this.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
    this.chars = 0;
  }

  private delete(key: K): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.chars -= entry.chars;
  }
}

/** Per cache: enough for a few large sources and their merges, small next to the Pod's memory limit. */
const MEMO_MAX_ENTRIES = 32;
const MEMO_MAX_CHARS = 16 * 1024 * 1024;

/**
 * Keyed by the base64 text itself. The informer hands out the same string
 * object while a Secret is unchanged, and a Map finds the same object without
 * reading its characters; an equal copy still hits, after one comparison.
 */
const decodedTexts = new BoundedLru<string, string>(MEMO_MAX_ENTRIES, MEMO_MAX_CHARS);
const preparedTexts = new BoundedLru<string, PreparedSource>(MEMO_MAX_ENTRIES, MEMO_MAX_CHARS);
/** Keyed by mergeKey; the texts are compared separately, by ===. */
const mergedResults = new BoundedLru<string, { texts: (string | undefined)[]; result: PlaceholderResult }>(
  MEMO_MAX_ENTRIES,
  MEMO_MAX_CHARS,
);
/** The base64 of a result's JSON and its UTF-8 size, computed once per shared result. */
const resultData = new WeakMap<PlaceholderResult, { bytes: number; encoded?: string }>();

const work = { decodes: 0, parses: 0, merges: 0 };

/** How many decodes, parses and merges were computed rather than reused (for tests and benchmarks). */
export function placeholderWorkCounts(): { decodes: number; parses: number; merges: number } {
  return { ...work };
}

/** Forgets every memoized decode, parse and merge and zeroes the counts (for tests). */
export function clearPlaceholderMemos(): void {
  decodedTexts.clear();
  preparedTexts.clear();
  mergedResults.clear();
  work.decodes = work.parses = work.merges = 0;
}

function decodeSourceText(encoded: string): string {
  const cached = decodedTexts.get(encoded);
  if (cached !== undefined) return cached;
  work.decodes++;
  const text = decodeSecretValue(encoded);
  decodedTexts.set(encoded, text, encoded.length + text.length);
  return text;
}

/** Callers only read the result: it is shared by every placeholder the text reaches. */
function prepareSourceText(text: string): PreparedSource {
  const cached = preparedTexts.get(text);
  if (cached !== undefined) return cached;
  work.parses++;
  const prepared = prepare(parseDockerConfigJson(text));
  // The serialized entries are about the text again, and their objects as much once more.
  preparedTexts.set(text, prepared, 3 * text.length);
  return prepared;
}

function prepare(parsed: DockerConfigParseResult): PreparedSource {
  if (!parsed.ok) return parsed;
  const groups = new Map<string, SerializedRegistry[]>();
  for (const registry of parsed.registries) {
    const key = normalizeRegistryKey(registry.registry);
    // The one serializer writes each entry; only its fixed `{"auths":{…}}` wrapping is cut off.
    const json = serializeDockerConfigJson([registry]).slice(
      EMPTY_AUTHS_PREFIX.length,
      -EMPTY_AUTHS_SUFFIX.length,
    );
    const group = groups.get(key);
    if (group) group.push({ registry: registry.registry, json });
    else groups.set(key, [{ registry: registry.registry, json }]);
  }
  // The annotation and Events reach every namespace the export does: never show a key's user info.
  const skipped = parsed.skipped.map((entry) => ({
    registry: displayRegistryKey(entry.registry),
    reason: entry.reason,
  }));
  return { ok: true, groups, skipped };
}

/**
 * Everything of the sources the merge depends on except the texts: the
 * placeholder's namespace and name matter only as "in its own namespace" and
 * "is the placeholder itself", so every namespace a `*` export reaches shares
 * one key. JSON keeps names and types unambiguous; String keeps NaN and
 * Infinity apart.
 */
function mergeKey(
  placeholderNamespace: string,
  placeholderName: string | undefined,
  sources: readonly PlaceholderSource[],
): string {
  return JSON.stringify(
    sources.map((source) => {
      const own = source.ref.namespace === placeholderNamespace;
      return [
        source.ref.namespace,
        source.ref.name,
        String(source.weight),
        source.matchKind,
        source.secretType,
        own,
        own && source.ref.name === placeholderName,
      ];
    }),
  );
}

/**
 * Merges the sources for a placeholder in `placeholderNamespace`. Sources of
 * another Secret type are ignored, as upstream ignores them. A source that
 * does not parse is skipped and reported while the others still merge.
 * The result is frozen and may be shared with other placeholders.
 */
export function computePlaceholder(
  placeholderNamespace: string,
  sources: readonly PlaceholderSource[],
  options: { placeholderName?: string } = {},
): PlaceholderResult {
  const key = mergeKey(placeholderNamespace, options.placeholderName, sources);
  const texts = sources.map((source) => source.dockerconfigjson);
  const cached = mergedResults.get(key);
  // === on the same string object is a pointer comparison; an equal copy is compared once.
  if (cached !== undefined && cached.texts.every((text, i) => text === texts[i])) return cached.result;
  work.merges++;
  const result = mergeSources(placeholderNamespace, sources, options.placeholderName);
  const listed = result.secretNames.length + result.skipped.length + result.conflicts.length;
  const chars =
    texts.reduce((sum, text) => sum + (text?.length ?? 0), 0) +
    // The JSON, its base64 once planned, the annotation and ~128 per listed entry.
    Math.ceil((7 / 3) * result.dockerconfigjson.length) +
    result.statusAnnotation.length +
    128 * listed;
  mergedResults.set(key, { texts, result }, chars);
  return result;
}

function mergeSources(
  placeholderNamespace: string,
  sources: readonly PlaceholderSource[],
  placeholderName: string | undefined,
): PlaceholderResult {
  const ordered = sources
    .filter((source) => source.secretType === DOCKER_CONFIG_JSON_TYPE)
    .sort(leastPreferredFirst(placeholderNamespace));

  // Per registry the index in `merged` of the source writing it last; upstream's last writer wins.
  // Numbers, not objects, per registry: a source may give 10,000 registries and is merged once per placeholder.
  const merged: { name: string; groups: ReadonlyMap<string, readonly SerializedRegistry[]> }[] = [];
  const writers = new Map<string, number>();
  /** Only registries given by more than one source: every source that gave it, in merge order. */
  const contenders = new Map<string, string[]>();
  const secretNames: string[] = [];
  const skipped: SkippedSource[] = [];
  for (const source of ordered) {
    const name = refString(source.ref);
    if (source.ref.namespace === placeholderNamespace && source.ref.name === placeholderName) {
      skipped.push({ source: name, reason: SELF_REFERENCE_REASON });
      continue;
    }
    if (source.dockerconfigjson === undefined) {
      skipped.push({ source: name, reason: `missing ${DOCKER_CONFIG_JSON_KEY}` });
      continue;
    }
    const prepared = prepareSourceText(source.dockerconfigjson);
    if (!prepared.ok) {
      skipped.push({ source: name, reason: prepared.error });
      continue;
    }
    secretNames.push(name);
    for (const entry of prepared.skipped) skipped.push({ source: name, ...entry });
    merged.push({ name, groups: prepared.groups });
    for (const registry of prepared.groups.keys()) {
      const previous = writers.get(registry);
      if (previous !== undefined) {
        const list = contenders.get(registry);
        if (list) list.push(name);
        else contenders.set(registry, [merged[previous]?.name ?? '', name]);
      }
      writers.set(registry, merged.length - 1);
    }
  }

  const conflicts = [...contenders.entries()]
    .sort(([a], [b]) => compareKeys(a, b))
    .map(([registry, names]) => {
      const winner = merged[writers.get(registry) ?? -1]?.name ?? '';
      return {
        registry: displayRegistryKey(registry),
        winner,
        // The earlier writers are the conflict's losers.
        losers: names.filter((contender) => contender !== winner).sort(compareKeys),
      };
    });
  skipped.sort((a, b) => compareKeys(a.source, b.source) || compareKeys(a.registry ?? '', b.registry ?? ''));
  secretNames.sort(compareKeys);

  return Object.freeze({
    dockerconfigjson: joinWinners(writers, merged),
    secretNames: Object.freeze(secretNames),
    skipped: Object.freeze(skipped.map((entry) => Object.freeze(entry))),
    conflicts: Object.freeze(
      conflicts.map((conflict) => Object.freeze({ ...conflict, losers: Object.freeze(conflict.losers) })),
    ),
    statusAnnotation: placeholderStatusAnnotation({ secretNames, skipped, conflicts }),
  }) as PlaceholderResult;
}

function dataOf(result: PlaceholderResult): { bytes: number; encoded?: string } {
  let data = resultData.get(result);
  if (data === undefined) {
    data = { bytes: Buffer.byteLength(result.dockerconfigjson, 'utf8') };
    resultData.set(result, data);
  }
  return data;
}

function encodedDockerConfigJson(result: PlaceholderResult): string {
  const data = dataOf(result);
  data.encoded ??= encodeSecretValue(result.dockerconfigjson);
  return data.encoded;
}

/**
 * What serializeDockerConfigJson writes for the winners' entries (keys
 * sorted), from the prepared entries. Each winner keeps all its own keys for
 * the registry; a raw key belongs to one registry, so none repeats.
 */
function joinWinners(
  writers: ReadonlyMap<string, number>,
  merged: readonly { groups: ReadonlyMap<string, readonly SerializedRegistry[]> }[],
): string {
  const entries: SerializedRegistry[] = [];
  for (const [registry, index] of writers) entries.push(...(merged[index]?.groups.get(registry) ?? []));
  entries.sort((a, b) => compareKeys(a.registry, b.registry));
  return EMPTY_AUTHS_PREFIX + entries.map((entry) => entry.json).join(',') + EMPTY_AUTHS_SUFFIX;
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
      dockerconfigjson: encoded === undefined ? undefined : decodeSourceText(encoded),
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
  const { bytes } = dataOf(result);
  if (bytes > MAX_SECRET_DATA_BYTES) {
    // The API server would refuse it: keep the data, say why in the status.
    const failure = placeholderTooLargeMessage(placeholder.namespace, bytes, result.secretNames.length);
    return planFailure(placeholder, result, failure);
  }
  const data = { [DOCKER_CONFIG_JSON_KEY]: encodedDockerConfigJson(result) };
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
