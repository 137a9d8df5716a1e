// The registry client, built from the operator config Secret (caCerts,
// dangerousSkipTLSVerify, dangerousAllowInsecureRegistries, proxies) and rebuilt when that Secret changes: no
// restart needed. The Secret is read through a single-Secret watch; a fetch
// leases the current client, and a replaced client is closed once its last
// lease ends. An unusable configuration never crashes anything: it is
// logged, reported as a Warning Event on the Secret, and every fetch fails
// with the reason until the Secret is fixed.

import type { V1Secret } from '@kubernetes/client-node';
import { RegistryClient, type RegistryClientOptions } from '../../registry/client.js';
import type { Logger } from '../../runtime/logger.js';
import type { OperatorContext } from '../../runtime/operator.js';
import { FollowedSecret } from '../../sharing/controllers/followed-secret.js';
import { parseOperatorConfigSecret, type RegistryConfigOption } from '../operator-config.js';
import { ConfigurationError, type RegistryAccess, type RegistryLease } from '../registry-fetch.js';

export interface RegistryConfigOptions {
  /** Namespace and name of the operator config Secret. */
  namespace: string;
  secretName: string;
  /** Options the Secret does not set (timeouts, retries, limits, tmpDir). */
  clientDefaults?: Omit<RegistryClientOptions, RegistryConfigOption>;
}

interface Generation {
  fingerprint: string;
  client?: RegistryClient;
  /** Why this configuration cannot be used; every fetch fails with it. */
  error?: string;
  leases: number;
  retired: boolean;
}

const WATCH_USER = 'registry-config';

export class RegistryConfig implements RegistryAccess {
  private readonly secret: FollowedSecret;
  private readonly log: Logger;
  private readonly listeners: Array<() => void> = [];
  private current: Generation | undefined;

  constructor(
    private readonly ctx: OperatorContext,
    private readonly options: RegistryConfigOptions,
  ) {
    this.secret = new FollowedSecret(ctx, options.namespace, options.secretName, WATCH_USER);
    this.log = ctx.logger.child({ component: 'registry-config' });
  }

  /** `<namespace>/<name>` of the config Secret. */
  get secretKey(): string {
    return this.secret.key;
  }

  /** Starts the watch of the config Secret; controllers call it from init() (idempotent). */
  start(): void {
    this.secret.start(() => this.refresh());
  }

  /** Called after the configuration changed (not for the first one): failed fetches may now succeed. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  async lease(): Promise<RegistryLease> {
    this.start();
    await this.secret.read();
    this.refresh();
    const generation = this.current!;
    if (!generation.client) throw new ConfigurationError(generation.error ?? 'no registry client');
    generation.leases += 1;
    let released = false;
    return {
      client: generation.client,
      release: () => {
        if (released) return;
        released = true;
        generation.leases -= 1;
        this.closeIfDone(generation);
      },
    };
  }

  /** Closes the current client (after the workers drained); leases still out close theirs when they end. */
  close(): void {
    if (this.current) this.retire(this.current);
    this.current = undefined;
  }

  /** Rebuilds the client when the Secret's registry settings changed since the last build. */
  private refresh(): void {
    const secret = this.secret.peek();
    const parsed = parseOperatorConfigSecret(secret);
    const previous = this.current;
    if (previous?.fingerprint === parsed.fingerprint) return;
    const next: Generation = { fingerprint: parsed.fingerprint, leases: 0, retired: false };
    if (parsed.problems.length > 0) {
      next.error = this.invalid(parsed.problems.join('; '));
    } else {
      try {
        next.client = new RegistryClient({
          ...this.options.clientDefaults,
          ...parsed.options,
          logger: this.log,
        });
      } catch (err) {
        // The client names the option, never its value.
        next.error = this.invalid(err instanceof Error ? err.message : String(err));
      }
    }
    this.current = next;
    if (next.error !== undefined) this.report(secret, next.error);
    else
      this.log.info('registry client configured', {
        secret: this.secretKey,
        exists: secret !== undefined,
        settings: Object.keys(parsed.options),
      });
    if (previous) {
      this.retire(previous);
      for (const listener of this.listeners) listener();
    }
  }

  private invalid(reason: string): string {
    return `operator configuration Secret ${this.secretKey} is invalid: ${reason}`;
  }

  private report(secret: V1Secret | undefined, error: string): void {
    this.log.error('operator configuration is invalid; registry fetches fail until it is fixed', {
      secret: this.secretKey,
      error,
    });
    if (secret) {
      this.ctx.events.event(
        { ...secret, apiVersion: 'v1', kind: 'Secret' },
        'Warning',
        'InvalidConfiguration',
        error,
      );
    }
  }

  private retire(generation: Generation): void {
    generation.retired = true;
    this.closeIfDone(generation);
  }

  private closeIfDone(generation: Generation): void {
    if (generation.retired && generation.leases === 0) generation.client?.close();
  }
}
