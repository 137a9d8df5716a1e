// One Secret followed live through the shared named-Secret watch, as the
// operator configuration Secret is by the registry client and the cloud
// keychain: read it once it is known, peek at it, and hear of its changes.

import type { V1Secret } from '@kubernetes/client-node';
import type { OperatorContext } from '../../runtime/operator.js';
import { namedSecretWatches, type NamedSecretWatches } from './named-secrets.js';

export class FollowedSecret {
  private readonly watches: NamedSecretWatches;
  private started = false;

  /** `user` names the follower in the watch's bookkeeping; `description` names the Secret in errors. */
  constructor(
    ctx: OperatorContext,
    readonly namespace: string,
    readonly name: string,
    private readonly user: string,
    private readonly description = 'operator configuration Secret',
  ) {
    this.watches = namedSecretWatches(ctx);
  }

  /** `<namespace>/<name>`. */
  get key(): string {
    return `${this.namespace}/${this.name}`;
  }

  /** Starts following (idempotent: the first call's `onChange` is the one kept). */
  start(onChange: () => void): void {
    if (this.started) return;
    this.started = true;
    this.watches.acquire(this.namespace, this.name, this.user);
    this.watches.onChange((namespace, name) => {
      if (namespace === this.namespace && name === this.name) onChange();
    });
  }

  /** Resolves once the Secret (or its absence) is known; rejects with a message naming it. */
  async read(): Promise<void> {
    try {
      await this.watches.get(this.namespace, this.name);
    } catch (err) {
      throw new Error(
        `reading the ${this.description} ${this.key}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  /** The Secret as last seen; undefined when absent or not read yet. */
  peek(): V1Secret | undefined {
    return this.watches.peek(this.namespace, this.name);
  }
}
