// The cloud settings of the operator configuration Secret, followed live:
// the keychain's providers are rebuilt when iaasKeychainHosts changes, and
// listeners (failed fetches, RegistryTokens) run again after a change. An
// invalid entry is logged and reported once as a Warning Event on the Secret;
// the valid rest applies.

import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../runtime/logger.js';
import type { OperatorContext } from '../runtime/operator.js';
import { FollowedSecret } from '../sharing/controllers/followed-secret.js';
import type { CloudKeychain } from './keychain.js';
import {
  KEYCHAIN_CONFIG_KEYS,
  keychainSettings,
  type KeychainConfigKey,
  type KeychainSettings,
} from './keychain-config.js';
import type { CloudProviderName } from './types.js';

export interface KeychainWatchOptions {
  namespace: string;
  secretName: string;
  /** --iaas-keychains, when given. */
  flag?: readonly CloudProviderName[];
}

const WATCH_USER = 'cloud-keychain';

/** The decoded text of the cloud keys present in the Secret; a value that is not UTF-8 text is a problem. */
export function keychainValues(secret: Pick<V1Secret, 'data'> | undefined): {
  values: Partial<Record<KeychainConfigKey, string>>;
  problems: string[];
} {
  const values: Partial<Record<KeychainConfigKey, string>> = {};
  const problems: string[] = [];
  for (const key of KEYCHAIN_CONFIG_KEYS) {
    const raw = secret?.data?.[key];
    if (raw === undefined) continue;
    const text = Buffer.from(raw, 'base64').toString('utf8');
    if (text.includes('\uFFFD')) {
      problems.push(`${key}: not base64-encoded UTF-8 text`);
      continue;
    }
    values[key] = text;
  }
  return { values, problems };
}

export class KeychainWatch {
  private readonly secret: FollowedSecret;
  private readonly log: Logger;
  private readonly listeners: Array<() => void> = [];
  private current: { fingerprint: string; settings: KeychainSettings } | undefined;

  constructor(
    private readonly ctx: OperatorContext,
    readonly keychain: CloudKeychain,
    private readonly options: KeychainWatchOptions,
  ) {
    this.secret = new FollowedSecret(ctx, options.namespace, options.secretName, WATCH_USER);
    this.log = ctx.logger.child({ component: 'cloud-keychain' });
  }

  get secretKey(): string {
    return this.secret.key;
  }

  /** Starts following the config Secret (idempotent). */
  start(): void {
    this.secret.start(() => this.refresh());
  }

  /** Runs after the settings changed (not for the first ones). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The current settings, after the config Secret was read at least once. */
  async settings(): Promise<KeychainSettings> {
    this.start();
    await this.secret.read();
    return this.refresh();
  }

  private refresh(): KeychainSettings {
    const secret = this.secret.peek();
    const { values, problems } = keychainValues(secret);
    // The registry client's trusted CAs and proxy also serve the cloud token endpoints (STS, ECR, OAuth,
    // ACR's /oauth2/exchange): behind a proxy that inspects TLS, both are needed.
    const text = (key: string): string => {
      const raw = secret?.data?.[key];
      return raw ? Buffer.from(raw, 'base64').toString('utf8') : '';
    };
    const caCerts = text('caCerts');
    const proxySettings = { httpsProxy: text('httpsProxy'), noProxy: text('noProxy') };
    const fingerprint = JSON.stringify({ values, problems, caCerts, proxySettings });
    if (this.current?.fingerprint === fingerprint) return this.current.settings;
    const settings = keychainSettings({
      values,
      ...(this.options.flag ? { flag: this.options.flag } : {}),
      operatorNamespace: this.options.namespace,
    });
    settings.problems.unshift(...problems);
    const first = this.current === undefined;
    this.current = { fingerprint, settings };
    this.keychain.configure({
      extraHosts: settings.extraHosts,
      ...(caCerts ? { caCerts } : {}),
      proxy: proxySettings,
    });
    const proxy = this.keychain.proxy;
    if (proxy?.problem) {
      settings.problems.push(`${proxy.problem} (cloud token endpoints are not called until it is fixed)`);
    }
    if (settings.problems.length > 0) {
      const message = `operator configuration Secret ${this.secretKey}: ${settings.problems.join('; ')}; the other cloud settings apply`;
      this.log.error('cloud keychain settings are invalid', { secret: this.secretKey, error: message });
      if (secret) {
        this.ctx.events.event(
          { ...secret, apiVersion: 'v1', kind: 'Secret' },
          'Warning',
          'InvalidConfiguration',
          message,
        );
      }
    }
    this.log.info('cloud keychain settings', {
      secret: this.secretKey,
      keychains: [...settings.keychains],
      keychainsFrom: settings.keychainsFrom,
      keychainNamespaces: settings.keychainNamespaces ? [...settings.keychainNamespaces] : 'all',
      registryTokenNamespaces: [...settings.registryTokenNamespaces],
      extraHosts: settings.extraHosts,
      ...(proxy?.display ? { httpsProxy: proxy.display } : {}),
    });
    if (!first) for (const listener of this.listeners) listener();
    return settings;
  }
}
