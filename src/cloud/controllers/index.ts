import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';
import { CloudKeychain } from '../keychain.js';
import { PROVIDER_FACTORIES } from '../keychain-providers.js';
import { KeychainWatch } from '../keychain-watch.js';
import { RegistryTokenController } from './registry-token.js';

/** The process's cloud keychain and the watch of its settings in the operator config Secret. */
export function cloudKeychain(ctx: OperatorContext, config: OperatorConfig): KeychainWatch {
  const keychain = new CloudKeychain({
    factories: PROVIDER_FACTORIES,
    ...(config.cloudEnvironment ? { env: config.cloudEnvironment } : {}),
  });
  return new KeychainWatch(ctx, keychain, {
    namespace: config.namespace,
    secretName: config.configSecretName,
    ...(config.iaasKeychains ? { flag: config.iaasKeychains } : {}),
  });
}

/** The RegistryToken controller, when selected by --controllers. */
export function cloudControllers(
  ctx: OperatorContext,
  config: OperatorConfig,
  keychain: KeychainWatch,
): ControllerOperator[] {
  return config.controllers.includes('registrytoken') ? [new RegistryTokenController(ctx, { keychain })] : [];
}
