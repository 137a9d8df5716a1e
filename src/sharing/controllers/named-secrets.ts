import type { V1Secret } from '@kubernetes/client-node';
import type { Informer } from '../../runtime/informer.js';
import type { OperatorContext } from '../../runtime/operator.js';
import { SecretsResource } from '../../shared-informers.js';

type Listener = (namespace: string, name: string) => void;

const SYNC_TIMEOUT_MS = 15_000;

/**
 * Watches of single Secrets by namespace and name: the Secret of each
 * SecretExport and the copy of each SecretImport.
 *
 * Why not one informer over every Secret: memory would grow with Secrets that
 * are neither exported nor copies (10,000 unrelated 10 KB Secrets cost the
 * reference implementation 187 MB). A field selector on metadata.name keeps
 * exactly the Secrets needed; exports and imports are few compared to
 * Secrets. Watches are reference-counted and stop with their last user.
 */
export class NamedSecretWatches {
  private readonly refs = new Map<string, Set<string>>();
  private readonly listeners: Listener[] = [];

  constructor(private readonly ctx: OperatorContext) {}

  /** Calls `listener` whenever a watched Secret is added, changed or deleted. */
  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Starts (or shares) the watch of `namespace/name` on behalf of `user`. */
  acquire(namespace: string, name: string, user: string): void {
    const key = `${namespace}/${name}`;
    let users = this.refs.get(key);
    if (!users) {
      users = new Set();
      this.refs.set(key, users);
      const informer = this.ctx.informers.get<V1Secret>(informerName(key), {
        resource: SecretsResource,
        namespace,
        fieldSelector: `metadata.name=${name}`,
        resyncPeriodMs: 0,
      });
      const notify = () => {
        for (const l of this.listeners) l(namespace, name);
      };
      informer.addHandlers({ onAdd: notify, onUpdate: notify, onDelete: notify });
    }
    users.add(user);
  }

  /** Drops `user`'s interest; the watch stops when nobody needs it. */
  release(namespace: string, name: string, user: string): void {
    const key = `${namespace}/${name}`;
    const users = this.refs.get(key);
    if (!users?.delete(user) || users.size > 0) return;
    this.refs.delete(key);
    void this.ctx.informers.release(informerName(key));
  }

  /**
   * The Secret as last seen, waiting for the watch's first list so that
   * "absent" means absent and not "not listed yet". Undefined when not watched.
   */
  async get(namespace: string, name: string): Promise<V1Secret | undefined> {
    const informer = this.informer(namespace, name);
    if (!informer) return undefined;
    if (!informer.hasSynced()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`watch of Secret ${namespace}/${name} has not synced yet`)),
          SYNC_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([informer.synced, timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
    return informer.get(namespace, name);
  }

  /** The Secret as last seen, without waiting; undefined when not watched or not listed yet. */
  peek(namespace: string, name: string): V1Secret | undefined {
    return this.informer(namespace, name)?.get(namespace, name);
  }

  isWatched(namespace: string, name: string): boolean {
    return this.refs.has(`${namespace}/${name}`);
  }

  private informer(namespace: string, name: string): Informer<V1Secret> | undefined {
    const key = `${namespace}/${name}`;
    if (!this.refs.has(key)) return undefined;
    return this.ctx.informers.lookup<V1Secret>(informerName(key));
  }
}

const informerName = (key: string) => `secret:${key}`;

const perContext = new WeakMap<OperatorContext['informers'], NamedSecretWatches>();

/** One instance per process (per informer factory), shared by the sharing controllers. */
export function namedSecretWatches(ctx: OperatorContext): NamedSecretWatches {
  let watches = perContext.get(ctx.informers);
  if (!watches) {
    watches = new NamedSecretWatches(ctx);
    perContext.set(ctx.informers, watches);
  }
  return watches;
}
