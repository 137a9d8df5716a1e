// What an ImagePullSecretPolicy adds to (and later removes from) a
// ServiceAccount's imagePullSecrets. Pure: the controller passes the cached
// ServiceAccount and the policies that want an entry in it.
//
// The operator records on each ServiceAccount which names it appended, per
// policy, in one annotation. Only a recorded name is ever removed, so a name
// the user listed before a policy wanted it stays when the policy goes.

/** Annotation on a ServiceAccount: JSON object {policy name: secret name} of the entries policies appended. */
export const ADDED_ENTRIES_ANNOTATION = 'regcred.dev/image-pull-secrets-added';

/** Longest record read; an annotation grown beyond this by hand is ignored (nothing recorded, nothing removed). */
const MAX_RECORD_CHARS = 64 * 1024;

/** policy name → secret name the operator appended for it. */
export type AddedRecord = Record<string, string>;

/** One imagePullSecrets item as the API holds it. */
export interface LocalObjectReference {
  name?: string;
}

/**
 * The record in an annotation value. A value that is not a JSON object of
 * strings reads as empty: when unsure, the operator removes nothing.
 */
export function parseAddedRecord(value: string | undefined): AddedRecord {
  if (!value || value.length > MAX_RECORD_CHARS) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const record: AddedRecord = {};
  for (const [policy, name] of Object.entries(parsed)) {
    if (typeof name === 'string' && name !== '') record[policy] = name;
  }
  return record;
}

/** The annotation value for a record (keys sorted, so equal records compare equal); undefined when empty. */
export function formatAddedRecord(record: AddedRecord): string | undefined {
  const keys = Object.keys(record).sort();
  if (keys.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, record[k]])));
}

export interface ServiceAccountEntriesPlan {
  /** The imagePullSecrets to write; equal to the input when listChanged is false. */
  imagePullSecrets: LocalObjectReference[];
  /** The record to keep on the ServiceAccount. */
  record: AddedRecord;
  listChanged: boolean;
  recordChanged: boolean;
}

/**
 * The ServiceAccount's next imagePullSecrets and record.
 *
 * - `desired` maps each policy that wants an entry here to its secret name.
 * - A desired name already listed is left alone and not recorded (unless the
 *   record already holds it for this policy, or for a policy that no longer
 *   wants it: the entry then changes hands instead of being removed and added).
 * - A missing desired name is appended and recorded.
 * - A recorded name no policy wants any more loses one occurrence (the last);
 *   nothing else is removed and the order of the others is kept.
 */
export function planServiceAccountEntries(
  current: { imagePullSecrets: readonly LocalObjectReference[] | undefined; record: AddedRecord },
  desired: ReadonlyMap<string, string>,
): ServiceAccountEntriesPlan {
  const list = [...(current.imagePullSecrets ?? [])];
  const wantedNames = new Set(desired.values());
  const record: AddedRecord = {};
  // Names recorded for a policy that does not want them (any more): removed unless another policy wants them.
  const released = new Set<string>();
  for (const [policy, name] of Object.entries(current.record)) {
    if (desired.get(policy) !== name) released.add(name);
  }

  const has = (name: string) => list.some((e) => e.name === name);
  for (const [policy, name] of [...desired.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const recordedHere = current.record[policy] === name;
    if (recordedHere || released.has(name)) {
      // Ours already (or handed over from a policy that let go of it): keep it recorded, restore it if removed.
      released.delete(name);
      if (!Object.values(record).includes(name)) record[policy] = name;
      if (!has(name)) list.push({ name });
    } else if (!has(name)) {
      list.push({ name });
      record[policy] = name;
    }
  }

  for (const name of released) {
    if (wantedNames.has(name)) continue;
    let last = -1;
    list.forEach((e, i) => {
      if (e.name === name) last = i;
    });
    if (last >= 0) list.splice(last, 1);
  }

  const before = current.imagePullSecrets ?? [];
  const listChanged = list.length !== before.length || list.some((e, i) => e.name !== before[i]?.name);
  return {
    imagePullSecrets: list,
    record,
    listChanged,
    recordChanged: formatAddedRecord(record) !== formatAddedRecord(current.record),
  };
}

/** Whether the ServiceAccount lists `name` in imagePullSecrets. */
export function listsSecret(
  imagePullSecrets: readonly LocalObjectReference[] | undefined,
  name: string,
): boolean {
  return (imagePullSecrets ?? []).some((e) => e.name === name);
}
