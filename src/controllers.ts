import { cloudControllers, cloudKeychain } from './cloud/controllers/index.js';
import type { OperatorConfig } from './config.js';
import { packagingControllers } from './packaging/controllers/index.js';
import { podControllers } from './pods/controllers/index.js';
import type { ControllerOperator, OperatorContext } from './runtime/operator.js';
import { sharingControllers } from './sharing/controllers/index.js';

/** The controllers selected by --controllers, constructed on the shared context. */
export function buildControllers(ctx: OperatorContext, config: OperatorConfig): ControllerOperator[] {
  // One keychain (providers, credential cache, settings) for fetches and RegistryTokens.
  const keychain = cloudKeychain(ctx, config);
  return [
    ...sharingControllers(ctx, config),
    ...packagingControllers(ctx, config, keychain),
    ...podControllers(ctx, config),
    ...cloudControllers(ctx, config, keychain),
  ];
}
