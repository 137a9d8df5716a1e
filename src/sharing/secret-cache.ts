// How a read of a referenced Secret is answered: from the copy held since the
// last read, as absent, or by a GET. The Secret index (a slim record of every
// Secret, from the two placeholder watches) says which Secrets exist and at which resourceVersion; a
// full copy is held only for referenced names.

export type CachedRead = 'held' | 'absent' | 'get';

export interface CachedReadInput {
  /** resourceVersion in the index; undefined when the index has no such Secret. */
  indexRv: string | undefined;
  /** Index resourceVersion ('' for absent) current when the held copy was read; undefined when never read. */
  heldFor: string | undefined;
  /** resourceVersion of the held copy; undefined when it was read as absent. */
  heldRv: string | undefined;
}

export function decideCachedRead({ indexRv, heldFor, heldRv }: CachedReadInput): CachedRead {
  if (heldFor !== undefined) {
    // Nothing changed in the index since the read, or the read already returned what the index shows now
    // (a GET can see a change before the watch delivers it).
    if (heldFor === (indexRv ?? '')) return 'held';
    if (heldRv !== undefined && heldRv === indexRv) return 'held';
  }
  return indexRv === undefined ? 'absent' : 'get';
}
