import { fetchKeychain } from '../../cloud/keychain-fetch.js';
import type { KeychainWatch } from '../../cloud/keychain-watch.js';
import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';
import { FetchLimiter } from '../fetch-limiter.js';
import { fetchRunners, type FetchSecretReader } from '../registry-fetch.js';
import type { StageRunners } from '../app-pipeline.js';
import { AppController } from './app.js';
import { PackageInstallController } from './package-install.js';
import { PackageRepositoryController } from './package-repository.js';
import type { RegistryConfigWatch } from './fetching-controller.js';
import { RegistryConfig } from './registry-config.js';
import { ApiRepositoryContentSync } from './repository-content-sync.js';

/** PackageRepository, PackageInstall and App controllers selected by --controllers. */
export function packagingControllers(
  ctx: OperatorContext,
  config: OperatorConfig,
  keychain?: KeychainWatch,
): ControllerOperator[] {
  const controllers: ControllerOperator[] = [];
  // One registry client for both fetching controllers, configured by the operator config Secret.
  const registryConfig = new RegistryConfig(ctx, {
    namespace: config.namespace,
    secretName: config.configSecretName,
    ...(config.fetchTmpDir ? { clientDefaults: { tmpDir: config.fetchTmpDir } } : {}),
  });
  // A change of the cloud settings retries failed fetches, like a change of the registry settings.
  const configWatch: RegistryConfigWatch = keychain
    ? {
        start: () => {
          registryConfig.start();
          keychain.start();
        },
        onChange: (listener) => {
          registryConfig.onChange(listener);
          keychain.onChange(listener);
        },
        close: () => registryConfig.close(),
      }
    : registryConfig;
  // Template and deploy runners do not exist yet: those steps fail with "not supported yet".
  const runners = (readSecret: FetchSecretReader): StageRunners => ({
    fetch: fetchRunners({
      registry: registryConfig,
      readSecret,
      tmpDir: config.fetchTmpDir,
      ...(keychain ? { keychain: fetchKeychain(keychain) } : {}),
    }),
    template: [],
    deploy: [],
  });
  const workRoot = config.fetchTmpDir ? { workRoot: config.fetchTmpDir } : {};
  // One set of fetch slots for both fetching controllers.
  const limiter = new FetchLimiter({
    maxConcurrent: config.maxConcurrentFetches,
    timeoutMs: config.fetchTimeoutMs,
    diskBudgetBytes: config.fetchDiskBudgetBytes,
  });
  if (config.controllers.includes('packagerepository')) {
    controllers.push(
      new PackageRepositoryController(ctx, {
        runners,
        registryConfig: configWatch,
        content: new ApiRepositoryContentSync(
          ctx.client,
          ctx.logger.child({ controller: 'packagerepository' }),
        ),
        limiter,
        ...workRoot,
      }),
    );
  }
  if (config.controllers.includes('packageinstall')) {
    controllers.push(
      new PackageInstallController(ctx, {
        globalNamespace: config.packagingGlobalNamespace,
        defaultSyncPeriod: config.packageInstallDefaultSyncPeriod,
      }),
    );
  }
  if (config.controllers.includes('app')) {
    controllers.push(new AppController(ctx, { runners, registryConfig: configWatch, limiter, ...workRoot }));
  }
  return controllers;
}
