import type { V1Secret } from '@kubernetes/client-node';
import { Backoff } from '../../runtime/backoff.js';
import { FairLimiter } from '../../runtime/fair-limiter.js';
import type { Logger } from '../../runtime/logger.js';
import type { OperatorContext } from '../../runtime/operator.js';
import { errorMessage } from '../../runtime/work-queue.js';
import { secretIndex, SecretsResource, type SecretIndex, type SecretStub } from '../../shared-informers.js';
import { decideCachedRead } from '../secret-cache.js';

type Listener = (namespace: string, name: string) => void;

const SYNC_TIMEOUT_MS = 15_000;

/**
 * GETs of referenced Secrets in flight at once. Without a bound, one App
 * naming 2,000 Secrets queued 2,000 GETs on the shared client (and its rate
 * limiter) in front of every other namespace's reads and writes; with it,
 * others wait for one slot, taken round-robin by namespace.
 */
export const MAX_CONCURRENT_SECRET_READS = 16;

/** The full copy of one referenced Secret and who references it. */
interface Held {
  users: Set<string>;
  /** As last read; undefined when read as absent or never read. */
  secret: V1Secret | undefined;
  /** Index resourceVersion ('' for absent) current when `secret` was read; undefined when never read. */
  heldFor: string | undefined;
  /** Bumped on each change the index reports, so a read that started before it is not kept. */
  changes: number;
  reading?: { changes: number; promise: Promise<V1Secret | undefined> };
  retry?: NodeJS.Timeout;
  backoff?: Backoff;
}

/**
 * Single Secrets by namespace and name, for whoever references them: the
 * Secret of each SecretExport, the copy and source of each SecretImport, the
 * Secrets fetches read, the operator config Secret.
 *
 * Cost does not grow with the number of names: the Secret index (slim
 * records of every Secret, from the two placeholder watches) says which
 * Secrets exist and when they change, and the full Secret is read with a GET
 * only for names that are referenced, held while referenced and read again
 * only when the index shows a newer resourceVersion. Users are told of a change (by
 * onChange) once the held copy is current, so peek() in a listener sees it.
 * A watch per name would cost a connection and ~100 KB each, and a tenant
 * naming thousands of Secrets would open thousands.
 */
export class NamedSecretWatches {
  private readonly held = new Map<string, Held>();
  private readonly listeners: Listener[] = [];
  private readonly reads = new FairLimiter(MAX_CONCURRENT_SECRET_READS);
  private readonly index: SecretIndex;
  private readonly log: Logger;

  constructor(private readonly ctx: OperatorContext) {
    this.log = ctx.logger.child({ component: 'named-secrets' });
    this.index = secretIndex(ctx);
    const changed = (stub: SecretStub) => this.indexChanged(stub.metadata.namespace, stub.metadata.name);
    this.index.addHandlers({ onAdd: changed, onUpdate: (_old, stub) => changed(stub), onDelete: changed });
  }

  /** Calls `listener` whenever a referenced Secret is added, changed or deleted. */
  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Starts (or shares) following `namespace/name` on behalf of `user`. */
  acquire(namespace: string, name: string, user: string): void {
    const key = `${namespace}/${name}`;
    const existing = this.held.get(key);
    if (existing) {
      existing.users.add(user);
      return;
    }
    this.held.set(key, { users: new Set([user]), secret: undefined, heldFor: undefined, changes: 0 });
    // Like a watch's first list: an existing Secret is read and reported once. Before the index has
    // listed, its own add event does this.
    if (this.index.hasSynced() && this.index.get(namespace, name)) this.indexChanged(namespace, name);
  }

  /** Drops `user`'s interest; the held copy goes when nobody needs it. */
  release(namespace: string, name: string, user: string): void {
    const key = `${namespace}/${name}`;
    const entry = this.held.get(key);
    if (!entry?.users.delete(user) || entry.users.size > 0) return;
    if (entry.retry) clearTimeout(entry.retry);
    this.held.delete(key);
  }

  /**
   * The Secret as it is now, waiting for the index's first list so that
   * "absent" means absent and not "not listed yet". Undefined when not
   * referenced. Rejects when the GET fails (callers retry with backoff).
   */
  async get(namespace: string, name: string): Promise<V1Secret | undefined> {
    const key = `${namespace}/${name}`;
    if (!this.held.has(key)) return undefined;
    if (!this.index.hasSynced()) await this.waitForIndex(namespace, name);
    const entry = this.held.get(key);
    if (!entry) return undefined;
    switch (this.decide(entry, namespace, name)) {
      case 'held':
        return entry.secret;
      case 'absent':
        entry.secret = undefined;
        entry.heldFor = '';
        return undefined;
      case 'get':
        return this.read(key, entry);
    }
  }

  /** The Secret as last read, without waiting; undefined when not referenced or not read yet. */
  peek(namespace: string, name: string): V1Secret | undefined {
    return this.held.get(`${namespace}/${name}`)?.secret;
  }

  isWatched(namespace: string, name: string): boolean {
    return this.held.has(`${namespace}/${name}`);
  }

  /** Names referenced now (for tests and metrics). */
  get referencedCount(): number {
    return this.held.size;
  }

  private decide(entry: Held, namespace: string, name: string) {
    return decideCachedRead({
      indexRv: this.index.get(namespace, name)?.metadata.resourceVersion,
      heldFor: entry.heldFor,
      heldRv: entry.secret?.metadata?.resourceVersion,
    });
  }

  private async waitForIndex(namespace: string, name: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the Secret index has not synced yet (reading Secret ${namespace}/${name})`)),
        SYNC_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.index.synced, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** GETs the Secret; concurrent reads for the same change share one request. */
  private read(key: string, entry: Held): Promise<V1Secret | undefined> {
    const changes = entry.changes;
    if (entry.reading?.changes === changes) return entry.reading.promise;
    const slash = key.indexOf('/');
    const [namespace, name] = [key.slice(0, slash), key.slice(slash + 1)];
    const heldFor = this.index.get(namespace, name)?.metadata.resourceVersion ?? '';
    const promise = this.reads
      .run(namespace, () => this.ctx.client.get<V1Secret>(SecretsResource, namespace, name))
      .then((secret) => {
        if (secret?.metadata?.managedFields) delete secret.metadata.managedFields;
        // A change reported meanwhile has its own read; this one must not overwrite it.
        if (this.held.get(key) === entry && entry.changes === changes) {
          entry.secret = secret;
          entry.heldFor = heldFor;
        }
        return secret;
      })
      .finally(() => {
        if (entry.reading?.promise === promise) entry.reading = undefined;
      });
    entry.reading = { changes, promise };
    return promise;
  }

  /** The index saw `namespace/name` added, changed or deleted: bring the held copy up to date, then tell users. */
  private indexChanged(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const entry = this.held.get(key);
    if (!entry) return; // not referenced: nothing to read, nobody to tell
    entry.changes += 1;
    if (entry.retry) clearTimeout(entry.retry);
    entry.retry = undefined;
    void this.refresh(key, entry, namespace, name);
  }

  private async refresh(key: string, entry: Held, namespace: string, name: string): Promise<void> {
    const changes = entry.changes;
    switch (this.decide(entry, namespace, name)) {
      case 'held':
        break;
      case 'absent':
        entry.secret = undefined;
        entry.heldFor = '';
        break;
      case 'get':
        try {
          await this.read(key, entry);
        } catch (err) {
          if (this.held.get(key) !== entry || entry.changes !== changes) return;
          // The operator is stopping (its client closed the request): a retry would fail the same way, forever.
          if (this.ctx.client.isClosed) return;
          // Users hold on to the last copy meanwhile; the change must not be lost, so read again later.
          entry.backoff ??= new Backoff(500, 30_000);
          const delay = entry.backoff.next();
          this.log.warn('reading a referenced Secret failed; retrying', {
            secret: key,
            error: errorMessage(err),
            retryInMs: delay,
          });
          entry.retry = setTimeout(() => {
            entry.retry = undefined;
            if (this.held.get(key) === entry && entry.changes === changes)
              void this.refresh(key, entry, namespace, name);
          }, delay);
          entry.retry.unref();
          return;
        }
        entry.backoff?.reset();
        break;
    }
    // A later change has its own refresh, which tells users once its read is done.
    if (this.held.get(key) !== entry || entry.changes !== changes) return;
    for (const l of this.listeners) l(namespace, name);
  }
}

const perContext = new WeakMap<OperatorContext['informers'], NamedSecretWatches>();

/** One instance per process (per informer factory), shared by the sharing and packaging controllers. */
export function namedSecretWatches(ctx: OperatorContext): NamedSecretWatches {
  let watches = perContext.get(ctx.informers);
  if (!watches) {
    watches = new NamedSecretWatches(ctx);
    perContext.set(ctx.informers, watches);
  }
  return watches;
}
