import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';
import { AppController } from './app.js';
import { PackageInstallController } from './package-install.js';
import { PackageRepositoryController } from './package-repository.js';

/** PackageRepository, PackageInstall and App controllers selected by --controllers. */
export function packagingControllers(ctx: OperatorContext, config: OperatorConfig): ControllerOperator[] {
  const controllers: ControllerOperator[] = [];
  if (config.controllers.includes('packagerepository'))
    controllers.push(new PackageRepositoryController(ctx));
  if (config.controllers.includes('packageinstall')) {
    controllers.push(
      new PackageInstallController(ctx, {
        globalNamespace: config.packagingGlobalNamespace,
        defaultSyncPeriod: config.packageInstallDefaultSyncPeriod,
      }),
    );
  }
  if (config.controllers.includes('app')) controllers.push(new AppController(ctx));
  return controllers;
}
