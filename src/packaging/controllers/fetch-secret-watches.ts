// The Secrets a controller's fetches read, followed by name through the shared
// NamedSecretWatches (the slim Secret index of the two placeholder watches
// plus a GET of each referenced Secret when it changes): a name is followed
// from its first owner to its last, and no name costs a connection of its own. A change of a
// Secret's type or data enqueues its owners at once (Beyond upstream, which
// sleeps and retries hoping a placeholder gets filled); fetches read the
// Secrets from there.

import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../../runtime/logger.js';
import { namedSecretWatches, type NamedSecretWatches } from '../../sharing/controllers/named-secrets.js';
import type { OperatorContext } from '../../runtime/operator.js';
import { SecretReferences } from '../secret-references.js';

/** What a Secret is, for a fetch: its type and data, hashed (no second copy of the values). */
export function secretContentFingerprint(secret: V1Secret | undefined): string {
  if (!secret) return 'absent';
  const data = Object.entries(secret.data ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify([secret.type ?? '', data]))
    .digest('hex');
}

const UNKNOWN = 'unknown';

export class FetchSecretWatches {
  private readonly watches: NamedSecretWatches;
  private readonly references = new SecretReferences();
  /** Fingerprint of each referenced Secret as last seen since it was first read. */
  private readonly seen = new Map<string, string>();

  /**
   * `user` names this controller to the shared watches; `onChanged` gets the
   * owners (`<namespace>/<name>`) of a Secret whose content changed.
   */
  constructor(
    ctx: OperatorContext,
    private readonly user: string,
    private readonly log: Logger,
    private readonly onChanged: (owners: string[]) => void,
  ) {
    this.watches = namedSecretWatches(ctx);
    this.watches.onChange((namespace, name) => this.changed(`${namespace}/${name}`));
  }

  /** Records the Secrets (names in `namespace`) that `owner`'s fetch reads now. */
  track(owner: string, namespace: string, secretNames: readonly string[]): void {
    const change = this.references.set(
      owner,
      secretNames.map((name) => `${namespace}/${name}`),
    );
    for (const key of change.released) this.stopWatching(key);
    for (const key of change.acquired) this.startWatching(key);
  }

  forget(owner: string): void {
    for (const key of this.references.delete(owner).released) this.stopWatching(key);
  }

  /** A Secret for a fetch, as it is now (waits for the Secret index's first list). */
  async read(namespace: string, name: string): Promise<V1Secret | undefined> {
    const key = `${namespace}/${name}`;
    // A fetch reads only what track() recorded; this guards a caller that skipped it.
    if (!this.references.isReferenced(key)) throw new Error(`internal error: Secret ${key} is not watched`);
    return this.watches.get(namespace, name);
  }

  private startWatching(key: string): void {
    const [namespace, name] = splitSecretKey(key);
    this.watches.acquire(namespace, name, this.user);
    // The first list is no change: the fingerprint it gives is the baseline.
    this.watches.get(namespace, name).then(
      (secret) => {
        if (this.references.isReferenced(key) && !this.seen.has(key))
          this.seen.set(key, secretContentFingerprint(secret));
      },
      (err: unknown) => {
        this.log.warn('first read of a fetch Secret failed', {
          secret: key,
          error: err instanceof Error ? err.message : String(err),
        });
        if (this.references.isReferenced(key) && !this.seen.has(key)) this.seen.set(key, UNKNOWN);
      },
    );
  }

  private stopWatching(key: string): void {
    const [namespace, name] = splitSecretKey(key);
    this.seen.delete(key);
    this.watches.release(namespace, name, this.user);
  }

  private changed(key: string): void {
    const before = this.seen.get(key);
    if (before === undefined) return; // not ours, or still listing
    const [namespace, name] = splitSecretKey(key);
    const now = secretContentFingerprint(this.watches.peek(namespace, name));
    if (now === before) return; // e.g. only an annotation changed
    this.seen.set(key, now);
    const owners = this.references.ownersOf(key);
    this.log.debug('fetch Secret changed; fetching again', { secret: key, owners: owners.length });
    this.onChanged(owners);
  }
}

function splitSecretKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
