import type { OperatorConfig } from '../../config.js';
import type { ControllerOperator, OperatorContext } from '../../runtime/operator.js';

/** PackageRepository, PackageInstall and App controllers selected by --controllers. */
export function packagingControllers(_ctx: OperatorContext, _config: OperatorConfig): ControllerOperator[] {
  return [];
}
